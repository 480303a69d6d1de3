"""Export a QFX model to QONNX (standard Quant nodes, and a qfx-domain FixedCast where Quant cannot say it)."""

from qfx.export.qonnx import ExportError, export_qonnx

__all__ = ["ExportError", "export_qonnx"]
