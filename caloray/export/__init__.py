"""Exports of trained models for use outside caloray (ONNX for C++ inference)."""

from caloray.export.onnx import OPSET, ExportError, export_onnx, graph_specs, run_onnx

__all__ = ["OPSET", "ExportError", "export_onnx", "graph_specs", "run_onnx"]
