// qfx/qfx.h -- umbrella header of the QFX HLS layer library.
//
// Every template computes bit-exactly what the QFX IR's integer interpreter computes: intermediates live in types
// the code generator chooses wide enough to be exact (acc_t, sh_t), and the only rounding/overflow of a layer is the
// assignment of its result to out_t, with out_t's ap_fixed quantization and overflow modes. Arrays are flat,
// row-major NCHW without batch (PyTorch's memory order), so flatten is a no-op.
//
// How the generated top function uses the library (fully unrolled, one sample per clock):
//   - Each template carries `#pragma HLS PIPELINE II=1` at function level. Per UG1399 (Function Pipelining), a
//     pipelined function has every loop in its body and in the hierarchy below unrolled automatically; the
//     `#pragma HLS UNROLL` on each loop says the same explicitly. Templates taking constant tables (weights, bias,
//     K-hot digits, scales) add `#pragma HLS FUNCTION_INSTANTIATE` on them, so that each call site gets its own RTL,
//     specialised to its constants, even when two layers share one template instance.
//   - ARRAY_PARTITION belongs in the function where an array is defined (UG1399, pragma HLS array_partition), so
//     the templates do not partition their arguments: the top declares every intermediate array and partitions it
//     with `#pragma HLS ARRAY_PARTITION variable=<name> complete dim=0`, and partitions its own array ports
//     completely too. Weights, tables and digit tables are `static const` arrays of integer codes (constant.h) the
//     top passes in; with every index a constant after unrolling they become constant operands (no memory).
//   - Default (latency) design: `#pragma HLS PIPELINE II=1` on the top, which then has no loops of its own; each
//     layer call is pipelined (or inlined by the tool) inside the top's pipeline.
//   - Alternative: `#pragma HLS DATAFLOW` on the top, each layer call one process pipelined at II=1 by its own
//     pragma. Every template reads its inputs only and writes each output element exactly once, as dataflow
//     requires; a tensor read by two layers (a residual add) needs a copy (qfx::cast into the same type) so that
//     each channel has one producer and one consumer.
//   - Templates never use `#pragma HLS INLINE off`; only the small helpers (K-hot digit, constant and code
//     readers) ask to be inlined.
#ifndef QFX_QFX_H_
#define QFX_QFX_H_

#include "activation.h"
#include "constant.h"
#include "conv2d.h"
#include "dense.h"
#include "elementwise.h"
#include "khot.h"
#include "pool.h"
#include "shape.h"
#include "threshold.h"

#endif  // QFX_QFX_H_
