"""Read and write the CaloChallenge binning XML (`<Bins><Bin pid name><Layer id r_edges n_bin_alpha/>`)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

from caloray.errors import GeometryError
from caloray.geometry.geometry import Geometry
from caloray.geometry.layer import CylindricalLayer
from caloray.provenance import atomic_write


def read_binning_xml(path: str | Path, name: str | None = None, particle: str | None = None) -> Geometry:
    """Parse a binning XML into a cylindrical `Geometry` (materials unset).

    `particle` picks a `<Bin name=...>` when the file holds several; errors name the file and layer.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise GeometryError(f"{path}: binning XML not found") from None
    except ET.ParseError as exc:
        raise GeometryError(f"{path}: not well-formed XML: {exc}") from None
    bins = root.findall("Bin")
    if not bins:
        raise GeometryError(f"{path}: no <Bin> element under <{root.tag}>")
    if particle is not None:
        bins = [b for b in bins if b.get("name") == particle]
        if not bins:
            raise GeometryError(f"{path}: no <Bin name={particle!r}>")
    elif len(bins) > 1:
        names = [b.get("name") for b in bins]
        raise GeometryError(f"{path}: several <Bin> elements {names}; pass particle=")
    element = bins[0]
    layers, empty = [], []
    seen: set[int] = set()
    for layer_el in element.findall("Layer"):
        where = f"{path}: <Layer id={layer_el.get('id')!r}>"
        try:
            layer_id = int(layer_el.get("id", ""))
            edges = tuple(float(v) for v in layer_el.get("r_edges", "").split(","))
            n_alpha = int(layer_el.get("n_bin_alpha", ""))
        except ValueError:
            raise GeometryError(f"{where}: id, r_edges and n_bin_alpha must be numbers") from None
        if layer_id in seen:
            raise GeometryError(f"{where}: layer id appears twice")
        if layers and layer_id < max(seen):
            raise GeometryError(f"{where}: layer ids must increase")
        seen.add(layer_id)
        if n_alpha < 1:
            raise GeometryError(f"{where}: n_bin_alpha must be ≥ 1, got {n_alpha}")
        if edges == (0.0,):
            empty.append(layer_id)
            continue
        if edges[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise GeometryError(f"{where}: r_edges must start at 0 and strictly increase, got {edges}")
        layers.append(CylindricalLayer(layer_id, edges, n_alpha))
    if not layers:
        raise GeometryError(f"{path}: no layer with voxels")
    pid = int(element.get("pid", "0"))
    particle_name = element.get("name", "unknown")
    return Geometry(name or path.stem, "cylindrical", particle_name, pid, tuple(layers), tuple(empty))


def _format_edge(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


def write_binning_xml(geometry: Geometry, path: str | Path) -> None:
    """Write a cylindrical geometry as binning XML (atomically: temp file, then rename)."""
    if geometry.kind != "cylindrical":
        raise GeometryError(f"geometry {geometry.name!r} is {geometry.kind}; binning XML is cylindrical only")
    root = ET.Element("Bins")
    element = ET.SubElement(root, "Bin", pid=str(geometry.pid), name=geometry.particle)
    by_id: dict[int, tuple[str, int]] = {i: ("0", 1) for i in geometry.empty_layer_ids}
    for layer in geometry.layers:
        assert isinstance(layer, CylindricalLayer)
        by_id[layer.id] = (",".join(_format_edge(v) for v in layer.r_edges_mm), layer.n_alpha)
    for layer_id in sorted(by_id):
        edges, n_alpha = by_id[layer_id]
        ET.SubElement(element, "Layer", id=str(layer_id), r_edges=edges, n_bin_alpha=str(n_alpha))
    ET.indent(root)
    atomic_write(path, lambda tmp: ET.ElementTree(root).write(tmp, encoding="unicode"))
