"""Mechanical rewrite of a CUDA source (.cu / .cuh) into host C++ for the CPU emulator.

The kernel sources are not forked: the emulated build compiles them through this step, which
changes only what C++ cannot express and keeps every line where it was (``#line`` names the
original file, so diagnostics and the emulator's messages point at the real source):

- ``kernel<<<grid, block, shared, stream>>>(args)`` becomes
  ``::ipdpp::emu::launch_kernel(kernel, "kernel", grid, block, shared, stream)(args)``;
- ``reinterpret_cast<(const) void*>(kernel)`` of a kernel defined in the file becomes
  ``::ipdpp::emu::kernel_pointer(kernel, "kernel")``, which registers its parameter types;
- in each ``__global__`` function, a prologue is inserted after the opening brace that reports
  the kernel's static shared arrays and ``__launch_bounds__`` when the emulator probes it, and
  every ``__shared__`` declaration becomes a reference to the running block's own storage:
  ``__shared__ T name[N];`` -> ``T (&name)[N] = ::ipdpp::emu::static_shared<T[N]>(i);`` and
  ``extern __shared__ T name[];`` -> ``T* const name = ::ipdpp::emu::dynamic_shared<T>();``.

A ``__shared__`` declaration outside a ``__global__`` function is an error (the emulator gives
shared storage to kernels only).

Usage: preprocess.py INPUT OUTPUT DISPLAY_NAME
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

KERNEL = re.compile(
    r"\b__global__\s+(?:__launch_bounds__\s*\((?P<lb1>(?:[^()]|\([^()]*\))*)\)\s*)?void\s+"
    r"(?:__launch_bounds__\s*\((?P<lb2>(?:[^()]|\([^()]*\))*)\)\s*)?(?P<name>[A-Za-z_]\w*)\s*\("
)
SHARED = re.compile(
    r"(?P<extern>\bextern\s+)?\b__shared__\s+(?:__align__\s*\(\s*(?P<align1>\d+)\s*\)\s+)?"
    r"(?P<type>[A-Za-z_][\w:<>,*\s]*?)\s*(?:__align__\s*\(\s*(?P<align2>\d+)\s*\)\s*)?"
    r"\b(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\]\s*)*);"
)
LAUNCH = re.compile(
    r"(?P<kernel>\b[A-Za-z_][\w:]*(?:\s*<[^<>;{}()]*>)?)\s*<<<(?P<config>.*?)>>>\s*\(", re.DOTALL
)


@dataclass
class Edit:
    start: int
    end: int
    text: str


def keep_lines(original: str, replacement: str) -> str:
    """``replacement`` followed by the newlines of ``original`` it would otherwise remove."""
    missing = original.count("\n") - replacement.count("\n")
    return replacement + "\n" * max(missing, 0)


def matching(text: str, start: int, open_char: str, close_char: str) -> int:
    """Index just past the bracket that closes the one at ``text[start]``."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if text.startswith("/*", i):
            i = text.find("*/", i) + 2
            continue
        if c in "\"'":
            j = i + 1
            while text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == open_char:
            depth += 1
        elif c == close_char:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_char}{close_char} from offset {start}")


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def rewrite_kernel_body(body: str, launch_bounds: str | None) -> str:
    """The body (without its braces) with the prologue and __shared__ declarations rewritten."""
    sizes: list[str] = []
    edits: list[Edit] = []
    for m in SHARED.finditer(body):
        type_ = " ".join(m["type"].split())
        dims = "".join(m["dims"].split())
        name = m["name"]
        if m["extern"]:
            if dims != "[]":
                raise ValueError(f"extern __shared__ {name} must be an unsized array")
            text = f"{type_}* const {name} = ::ipdpp::emu::dynamic_shared<{type_}>();"
        else:
            array = f"{type_}{dims}"
            align = m["align1"] or m["align2"]
            alignment = f"alignof({array})"
            if align:
                alignment = f"({align} > {alignment} ? {align} : {alignment})"
            sizes.append(f"::ipdpp::emu::StaticShared{{sizeof({array}), {alignment}}}")
            index = len(sizes) - 1
            declarator = f"(&{name}){dims}" if dims else f"&{name}"
            text = f"{type_} {declarator} = ::ipdpp::emu::static_shared<{array}>({index});"
        edits.append(Edit(m.start(), m.end(), keep_lines(m.group(0), text)))
    for e in reversed(edits):
        body = body[: e.start] + e.text + body[e.end :]
    bounds = " ".join(launch_bounds.split()) if launch_bounds else "0"
    prologue = (
        f" if (::ipdpp::emu::kernel_prologue(static_cast<int>({bounds}), {{{', '.join(sizes)}}}))"
        " return;"
    )
    return prologue + body


def preprocess(text: str, display: str) -> str:
    edits: list[Edit] = []
    kernels: set[str] = set()
    covered: list[tuple[int, int]] = []
    for m in KERNEL.finditer(text):
        params_end = matching(text, m.end() - 1, "(", ")")
        rest = text[params_end:]
        stripped = rest.lstrip()
        if not stripped.startswith("{"):
            continue  # a declaration
        open_brace = params_end + (len(rest) - len(stripped))
        close = matching(text, open_brace, "{", "}")
        kernels.add(m["name"])
        body = text[open_brace + 1 : close - 1]
        bounds = m["lb1"] or m["lb2"]
        edits.append(Edit(open_brace + 1, close - 1, rewrite_kernel_body(body, bounds)))
        covered.append((open_brace, close))
    for m in SHARED.finditer(text):
        if not any(a <= m.start() < b for a, b in covered):
            raise ValueError(
                f"{display}:{line_of(text, m.start())}: __shared__ outside a __global__ function "
                "is not supported by the emulator"
            )
    for e in reversed(edits):
        text = text[: e.start] + e.text + text[e.end :]

    def launch(m: re.Match[str]) -> str:
        kernel = m["kernel"]
        base = re.sub(r"\s*<.*", "", kernel, flags=re.DOTALL).split("::")[-1]
        text = f'::ipdpp::emu::launch_kernel({kernel}, "{base}", {m["config"]})('
        return keep_lines(m.group(0), text)

    text = LAUNCH.sub(launch, text)
    if kernels:
        names = "|".join(sorted(kernels, key=len, reverse=True))
        cast = re.compile(
            r"reinterpret_cast\s*<\s*(?:const\s+)?void\s*\*\s*>\s*\(\s*"
            rf"(?P<kernel>(?:{names})\b(?:\s*<[^<>;{{}}()]*>)?)\s*\)"
        )

        def pointer(m: re.Match[str]) -> str:
            base = re.sub(r"\s*<.*", "", m["kernel"], flags=re.DOTALL)
            return keep_lines(m.group(0), f'::ipdpp::emu::kernel_pointer({m["kernel"]}, "{base}")')

        text = cast.sub(pointer, text)
    header = (
        f"// Generated from {display} by csrc/emulator/preprocess.py for the CPU emulator.\n"
        '#include "emulator/device.h"\n'
        f'#line 1 "{display}"\n'
    )
    return header + text


def main(argv: list[str]) -> int:
    source, output, display = argv[1:4]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        result = preprocess(text, display)
    except ValueError as error:
        print(f"preprocess.py: {error}", file=sys.stderr)
        return 1
    with open(output, "w", encoding="utf-8") as f:
        f.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
