"""Calorimeter geometries: layers, voxel maps, coarse graining, CaloChallenge binning XML."""

from caloray.geometry.builtin import BUILTIN, DS2_COARSE_CHOICES, get_geometry
from caloray.geometry.geometry import Geometry
from caloray.geometry.layer import CartesianLayer, CylindricalLayer, Material
from caloray.geometry.xml import read_binning_xml, write_binning_xml

__all__ = [
    "BUILTIN",
    "DS2_COARSE_CHOICES",
    "CartesianLayer",
    "CylindricalLayer",
    "Geometry",
    "Material",
    "get_geometry",
    "read_binning_xml",
    "write_binning_xml",
]
