#!/usr/bin/env python3
"""Checks that the header, the Swift exports and the Python binding agree on every type.

Usage: python3 Tests/abi/check_types.py include/millis.h Sources/CMillis bindings/python

The same C function is written three times: its prototype in millis.h, its `@_cdecl`
signature in Sources/CMillis, and its (restype, argtypes) in the Python binding's
`FUNCTIONS` table (callbacks: the header's typedefs, the Swift callback typealiases and
the binding's CFUNCTYPEs). check_exports.py compares their names; this compares every
return and parameter type by its ABI class: integer width and signedness, double,
data pointer, and function pointer (whose own signature is compared the same way).
`size_t` against a Swift `Int` (signed) is a difference, as is a missing parameter.
The structs a caller passes by layout (millis_event) are compared field by field with
the binding's ctypes Structure whose docstring names them ("struct millis_event.");
the Swift exports import the header itself for those.
Exit status 0 when all three agree, 1 with the list of differences, 2 on a usage error.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

# ---- ABI classes --------------------------------------------------------------------
# i32/u32/i64/u64/f64/void, "ptr" for any data pointer, ("fn", ret, (params...)) for a
# function pointer.

C_SCALARS = {"int": "i32", "unsigned int": "u32", "unsigned": "u32", "size_t": "u64",
             "double": "f64", "void": "void", "int32_t": "i32", "uint32_t": "u32",
             "int64_t": "i64", "uint64_t": "u64"}
SWIFT_SCALARS = {"Int32": "i32", "UInt32": "u32", "Int": "i64", "UInt": "u64", "Int64": "i64",
                 "UInt64": "u64", "Double": "f64", "Void": "void", "()": "void"}
SWIFT_POINTERS = re.compile(r"^(Unsafe(Mutable)?(Raw)?Pointer(<.*>)?|OpaquePointer|Handle)\??$")
PY_SCALARS = {"c_int": "i32", "c_uint": "u32", "c_size_t": "u64", "c_double": "f64",
              "c_int32": "i32", "c_uint32": "u32", "c_int64": "i64", "c_uint64": "u64", "None": "void",
              "status_t": "i32", "enum_t": "i32"}
PY_POINTERS = {"c_void_p", "c_char_p", "ConfigP", "ClientP", "AnalyserP"}


def strip_c(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)
    return re.sub(r"^\s*\}\s*$", " ", text, flags=re.M)


def split_params(params: str) -> list[str]:
    """Splits at the top-level commas (a parameter may itself hold parentheses)."""
    out, depth, current = [], 0, ""
    for i, ch in enumerate(params):
        if ch in "(<[":
            depth += 1
        elif ch in ")]" or (ch == ">" and params[i - 1:i] != "-"):  # not Swift's "->"
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        out.append(current.strip())
    return out


# ---- the header -----------------------------------------------------------------------

def header_types(path: Path) -> tuple[dict, dict, dict, list]:
    """(functions, callbacks, structs, problems): name -> (ret, params) in ABI classes;
    struct name -> [(field, class)]."""
    text = strip_c(path.read_text())
    enums = set(re.findall(r"typedef\s+enum\s+\w*\s*\{[^}]*\}\s*(\w+)\s*;", text))
    text = re.sub(r"typedef\s+enum\s+\w*\s*\{[^}]*\}\s*\w+\s*;", " ", text)
    problems: list[str] = []
    callbacks: dict = {}
    functions: dict = {}

    def c_class(decl: str, where: str):
        """A parameter ("const char *name", "unsigned int ms", "millis_open_cb cb") or a
        return type, without its name, as an ABI class."""
        decl = re.sub(r"\b(const|struct|enum)\b", " ", decl)
        if "*" in decl:
            return "ptr"  # what it points at does not change how it is passed
        words = decl.split()
        for n in (2, 1):
            if " ".join(words[:n]) in C_SCALARS and len(words) - n <= 1:
                return C_SCALARS[" ".join(words[:n])]
        if words and words[0] in enums:
            return "i32"
        if words and words[0] in callbacks:
            return callbacks[words[0]]
        problems.append(f"header: {where}: type of `{' '.join(words)}` not understood")
        return "?"

    structs: dict = {}
    for match in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{([^}]*)\}\s*\w+\s*;", text):
        fields = []
        for decl in match.group(2).split(";"):
            decl = " ".join(decl.split())
            if decl:
                fields.append((re.findall(r"\w+", decl)[-1], c_class(re.sub(r"\w+$", "", decl), match.group(1))))
        structs[match.group(1)] = fields
    text = re.sub(r"typedef\s+struct\s+\w+\s*\{[^}]*\}\s*\w+\s*;", " ", text)
    for match in re.finditer(r"typedef\s+([\w\s\*]+?)\(\s*\*\s*(\w+)\s*\)\s*\(([^;]*)\)\s*;", text):
        ret, name, params = match.groups()
        args = [c_class(p, name) for p in split_params(params) if p.strip() != "void"]
        callbacks[name] = ("fn", c_class(ret, name), tuple(args))
    text = re.sub(r"typedef[^;]*;", " ", text)
    for statement in text.split(";"):
        decl = " ".join(statement.split())
        if "(" not in decl:
            continue
        match = re.fullmatch(r"(?:extern\s+)?([\w\s\*]+?[\s\*])(millis_\w+)\s*\((.*)\)", decl)
        if match is None:
            continue
        ret, name, params = match.groups()
        args = [c_class(p, name) for p in split_params(params) if p.strip() != "void"]
        functions[name] = (c_class(ret, name), tuple(args))
    return functions, callbacks, structs, problems


# ---- the Swift exports ------------------------------------------------------------------

def swift_types(folder: Path) -> tuple[dict, list]:
    sources = "\n".join(p.read_text() for p in sorted(folder.glob("*.swift")))
    aliases = dict(re.findall(r"typealias\s+(\w+)\s*=\s*([^\n]+)", sources))
    problems: list[str] = []

    def swift_class(t: str, where: str):
        t = t.strip()
        if t.startswith("(") and t.endswith(")?") and "@convention(c)" in t:
            t = t[1:-2].strip()
        t = re.sub(r"^@convention\(c\)\s*", "", t)
        if t.endswith("?") and t[:-1] in aliases:
            t = aliases[t[:-1]].strip()
            return swift_class(t if t.endswith("?") or t.startswith("@") else t + "?", where)
        if t in aliases:
            return swift_class(aliases[t], where)
        fn = re.fullmatch(r"\((.*)\)\s*->\s*(.+)", t, flags=re.S)
        if fn:
            params = [swift_class(p, where) for p in split_params(fn.group(1))]
            return ("fn", swift_class(fn.group(2), where), tuple(params))
        if t in SWIFT_SCALARS:
            return SWIFT_SCALARS[t]
        if SWIFT_POINTERS.match(t):
            return "ptr"
        problems.append(f"Swift: {where}: type `{t}` not understood")
        return "?"

    functions: dict = {}
    for match in re.finditer(r'@_cdecl\("(\w+)"\)\s*public\s+func\s+(\w+)\s*\(', sources):
        name = match.group(1)
        # The parameter list: up to the parenthesis that closes the one just matched.
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(sources[i], 0)
            i += 1
        params = sources[match.end():i - 1]
        rest = re.match(r"\s*(?:->\s*([^{]+?))?\s*\{", sources[i:])
        ret = (rest.group(1) if rest and rest.group(1) else "Void").strip()
        args = []
        for p in split_params(params):
            label_type = p.split(":", 1)
            args.append(swift_class(label_type[1] if len(label_type) == 2 else p, name))
        functions[name] = (swift_class(ret, name), tuple(args))
    return functions, problems


# ---- the Python binding ---------------------------------------------------------------

def python_types(folder: Path) -> tuple[dict, dict, list]:
    """Read from the binding's source (FUNCTIONS and its CFUNCTYPE constants), not by
    importing it: the check needs no library."""
    native = next((p for p in sorted(folder.rglob("_native.py")) if "build" not in p.parts), None)
    if native is None:
        return {}, {}, [f"Python: no _native.py under {folder}"]
    tree = ast.parse(native.read_text())
    problems: list[str] = []
    cfunctypes: dict = {}
    table = None

    def py_class(node, where: str):
        if isinstance(node, ast.Constant) and node.value is None:
            return "void"
        if isinstance(node, ast.Name):
            if node.id in PY_SCALARS:
                return PY_SCALARS[node.id]
            if node.id in PY_POINTERS:
                return "ptr"
            if node.id in cfunctypes:
                return cfunctypes[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "POINTER":
            return "ptr"
        problems.append(f"Python: {where}: type `{ast.unparse(node)}` not understood")
        return "?"

    structs: dict = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef):
            for item in stmt.body:
                if (isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name)
                        and item.targets[0].id == "_fields_"):
                    doc = ast.get_docstring(stmt) or ""
                    match = re.match(r"struct (\w+)", doc)
                    if match:
                        structs[match.group(1)] = [(f.elts[0].value, py_class(f.elts[1], stmt.name))
                                                   for f in item.value.elts]
            continue
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            continue
        target, value = stmt.targets[0].id, stmt.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "CFUNCTYPE":
            ret, *params = value.args
            cfunctypes[target] = ("fn", py_class(ret, target), tuple(py_class(p, target) for p in params))
        elif target == "FUNCTIONS" and isinstance(value, ast.Dict):
            table = value
    if table is None:
        return {}, structs, problems + ["Python: no FUNCTIONS table in _native.py"]
    functions: dict = {}
    for key, entry in zip(table.keys, table.values):
        name = key.value
        ret, args = entry.elts
        functions[name] = (py_class(ret, name), tuple(py_class(a, name) for a in args.elts))
    return functions, structs, problems


def describe(sig) -> str:
    def one(t):
        if isinstance(t, tuple):
            return f"fn({', '.join(one(a) for a in t[2])}) -> {one(t[1])}"
        return t
    ret, args = sig
    return f"({', '.join(one(a) for a in args)}) -> {one(ret)}"


def compare(header: dict, others: dict[str, dict]) -> list[str]:
    differences = []
    for name, want in sorted(header.items()):
        for where, table in others.items():
            got = table.get(name)
            if got is None:
                differences.append(f"{name}: missing in {where}")
            elif got != want:
                differences.append(f"{name}: header {describe(want)}, {where} {describe(got)}")
    for where, table in others.items():
        for name in sorted(set(table) - set(header)):
            differences.append(f"{name}: in {where}, not in the header")
    return differences


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    header, swift_dir, python_dir = Path(argv[1]), Path(argv[2]), Path(argv[3])
    h_functions, h_callbacks, h_structs, problems = header_types(header)
    s_functions, s_problems = swift_types(swift_dir)
    p_functions, p_structs, p_problems = python_types(python_dir)
    problems += s_problems + p_problems
    differences = problems + compare(h_functions, {"Swift": s_functions, "Python": p_functions})
    # The structs a caller passes by layout (the Swift exports use the header's own).
    for name, fields in sorted(h_structs.items()):
        if p_structs.get(name) != fields:
            differences.append(f"struct {name}: header {fields}, Python {p_structs.get(name)}")
    if not h_functions or not h_callbacks:
        differences.append("no functions or no callback typedefs found in the header: is the parser still right?")
    if differences:
        print(f"{len(differences)} type difference(s) between {header.name}, the Swift exports and the Python binding:")
        for line in differences:
            print(f"  {line}")
        return 1
    print(f"ok: {len(h_functions)} functions, {len(h_callbacks)} callback types and {len(h_structs)} struct(s) agree in the header, "
          "the Swift exports and the Python binding")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
