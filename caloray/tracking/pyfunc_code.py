"""MLflow "models from code" entry of registered caloray ensembles: MLflow runs this file to build the model.

Only this text is stored with a logged model; the class comes from the installed caloray and the weights from
the model's `ensemble.pt` artifact (weights_only), so no pickled object is involved.
"""

from mlflow.models import set_model

from caloray.tracking.pyfunc import EnsemblePyfunc

set_model(EnsemblePyfunc())
