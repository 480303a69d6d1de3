// qfx/stream/stream.h -- umbrella header of the streaming (dataflow) layer library: one unit per layer, joined by
// hls::stream FIFOs in a `#pragma HLS DATAFLOW` top function, each unit folded by the hardware plan's PE x SIMD.
// See common.h for the stream order and the constant tables, mvau.h and elementwise.h for the units.
#ifndef QFX_STREAM_STREAM_H_
#define QFX_STREAM_STREAM_H_

#include "common.h"
#include "elementwise.h"
#include "mvau.h"

#endif  // QFX_STREAM_STREAM_H_
