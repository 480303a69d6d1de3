"""Export a QFX model to QONNX (standard Quant nodes, and a qfx-domain FixedCast where Quant cannot say it), run a
QONNX file exactly with qonnx (:func:`execute_qonnx`), and an IR graph or QFX model to an hls4ml model that computes
the same bits (hls4ml is imported only when called)."""

from qfx.export.execute import execute_qonnx
from qfx.export.hls4ml import Hls4mlExportError, hls4ml_codes, to_hls4ml
from qfx.export.qonnx import ExportError, export_qonnx

__all__ = ["ExportError", "Hls4mlExportError", "execute_qonnx", "export_qonnx", "hls4ml_codes", "to_hls4ml"]
