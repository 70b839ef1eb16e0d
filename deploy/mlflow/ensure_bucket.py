"""Wait until the MLflow artifact bucket is usable on the S3-compatible store; create it if it is missing.

Reads MLFLOW_ARTIFACTS_DESTINATION (s3://BUCKET/prefix), MLFLOW_S3_ENDPOINT_URL and the AWS_* credentials from
the environment. On Kubernetes the credentials are MinIO's bucket-scoped user (made by the Job minio-setup,
which also creates the bucket): until that Job has run, the store answers 403 and this waits. With the root
credentials (docker-compose) a missing bucket is created. Retries while the store is starting.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import urlsplit


def bucket_name(destination: str) -> str:
    """The bucket of an s3://BUCKET/prefix URI."""
    parts = urlsplit(destination)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"expected s3://BUCKET[/prefix], got {destination!r}")
    return parts.netloc


def main() -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = bucket_name(os.environ["MLFLOW_ARTIFACTS_DESTINATION"])
    s3 = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
    for attempt in range(60):
        try:
            s3.head_bucket(Bucket=bucket)  # needs s3:ListBucket on this bucket only (no ListAllMyBuckets)
            print(f"bucket {bucket} is usable")
            return 0
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                try:
                    s3.create_bucket(Bucket=bucket)
                    print(f"created bucket {bucket}")
                    return 0
                except ClientError as create_exc:
                    exc = create_exc
            print(f"waiting for bucket {bucket} ({attempt + 1}/60): {exc}", file=sys.stderr)
        except BotoCoreError as exc:
            print(f"waiting for the object store ({attempt + 1}/60): {exc}", file=sys.stderr)
        time.sleep(5)
    return 1


if __name__ == "__main__":
    sys.exit(main())
