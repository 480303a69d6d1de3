"""Names generated code may not use: language keywords and the names QFX's own code and files use.

A user's layer, tensor or top name becomes a C++ and Verilog identifier (and a file name) in generated projects.
:func:`is_reserved` says whether an identifier would collide with

* a keyword of C++17 (with its alternative tokens and ``final``/``override``), Verilog-2005 (IEEE 1364-2005) or
  SystemVerilog (IEEE 1800-2017), or a name the C and ap_fixed headers define (``main``, ``std``, ``ap_*``, ...);
* a name QFX itself uses: every identifier in the C++/Verilog templates, the header library and the Verilog library
  (``qfx_cast``, ``x``, ``y``, ``N_INPUT``, ``input_t``, ...), and the names of the files it writes (``weights``,
  ``parameters``, ...). These are compared without case, as file names are on some systems.

:func:`qfx.ir.constants.sanitize` renames a colliding name deterministically (a ``_`` suffix, then a number).
"""

from __future__ import annotations

import functools
import re

__all__ = ["CPP17_KEYWORDS", "SYSTEMVERILOG_KEYWORDS", "VERILOG2005_KEYWORDS", "is_reserved", "qfx_names"]

CPP17_KEYWORDS = frozenset(
    """
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class compl const
constexpr const_cast continue decltype default delete do double dynamic_cast else enum explicit export extern false
float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private
protected public register reinterpret_cast return short signed sizeof static static_assert static_cast struct switch
template this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t
while xor xor_eq final override
""".split()
)

VERILOG2005_KEYWORDS = frozenset(
    """
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default defparam design
disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive endspecify endtable endtask
event for force forever fork function generate genvar highz0 highz1 if ifnone incdir include initial inout input
instance integer join large liblist library localparam macromodule medium module nand negedge nmos nor
noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1
scalared showcancelled signed small specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0
tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
""".split()
)

SYSTEMVERILOG_KEYWORDS = VERILOG2005_KEYWORDS | frozenset(
    """
accept_on alias always_comb always_ff always_latch assert assume before bind bins binsof bit break byte chandle
checker class clocking const constraint context continue cover covergroup coverpoint cross dist do endchecker
endclass endclocking endgroup endinterface endpackage endprogram endproperty endsequence enum eventually expect
export extends extern final first_match foreach forkjoin global iff ignore_bins illegal_bins implements implies
import inside int interconnect interface intersect join_any join_none let local logic longint matches modport
nettype new nexttime null package packed priority program property protected pure rand randc randcase randsequence
ref reject_on restrict return s_always s_eventually s_nexttime s_until s_until_with sequence shortint shortreal
soft solve static string strong struct super sync_accept_on sync_reject_on tagged this throughout timeprecision
timeunit type typedef union unique unique0 until until_with untyped var virtual void wait_order weak wildcard with
within
""".split()
)

#: Names of the C/C++ library and the ap_fixed headers that a generated identifier must not shadow or redefine.
LIBRARY_NAMES = frozenset(
    """
main std hls qfx NULL EOF FILE assert errno stdin stdout stderr printf fprintf sprintf scanf fscanf fopen fclose exit
abort malloc free memcpy memset size_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
input_t result_t model_default_t nnet hls4ml
""".split()
)

#: Files QFX writes into generated folders (their stems), beside the ones of the template and library folders.
FILE_STEMS = frozenset({"parameters", "weights", "build_prj", "hls_config", "readme", "qfx_project", "qfx_rtl"})

_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_NOISE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"", re.S)


@functools.cache
def qfx_names() -> frozenset[str]:
    """Every identifier of QFX's C++/Verilog templates and libraries, and its file names (lower case)."""
    from qfx.resources import data_dir

    root = data_dir("hls")
    files = [*root.glob("include/qfx/*.h"), *root.glob("rtl/*.v"), *root.glob("templates/rtl/*.j2")]
    files += [p for p in root.glob("templates/*.j2") if p.name.endswith((".cpp.j2", ".h.j2"))]
    names = set(FILE_STEMS)
    for path in files:
        names.add(path.name.split(".")[0].lower())
        names.update(n.lower() for n in _IDENT.findall(_NOISE.sub(" ", path.read_text(encoding="utf-8"))))
    return frozenset(names)


def is_reserved(ident: str) -> bool:
    """Whether the identifier ``ident`` collides with a keyword or with a name QFX or its headers use."""
    if ident in CPP17_KEYWORDS or ident in SYSTEMVERILOG_KEYWORDS or ident in LIBRARY_NAMES:
        return True
    low = ident.lower()
    return low.startswith("ap_") or "__" in ident or low in qfx_names()
