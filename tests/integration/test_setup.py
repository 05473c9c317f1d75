#!/usr/bin/python3
"""The set-up contract: tools/install-deps installs every Debian package the
tests, benches and tools need, and its module and program tables match the
imports and the programs run in the tree.

- Every module imported (at any depth, by any file under tests/, bench/ and
  tools/) is in the standard library, is one of the tree's own files, or is
  in install-deps's module table.
- Each such module is imported with /usr/bin/python3; every file it loads
  from outside the standard library belongs (dpkg -S) to a package on
  install-deps's list, and that package's module is in the table. This is
  what catches a package that only came as a Recommends: (pymodbus.client
  loads serial_asyncio, python3-serial-asyncio).
- Every row of the table is still needed.
- Every program the tests, benches and tools run by a literal name is in
  install-deps's program table (or in an Essential package), and each row
  of that table is a program of its listed package.
- `tools/install-deps --check` passes on this machine.
- The folders of src/ include each other without a cycle (tools/deps), and
  tools/deps does find one when a lower folder includes a higher one's
  header (checked on a copy of the tree with such an include).

Standard library only. Run: /usr/bin/python3 tests/integration/test_setup.py
"""
import ast
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, run, test  # noqa: E402

INSTALL_DEPS = os.path.join(ROOT, "tools", "install-deps")
TREES = ("tests", "bench", "tools")


def python_files():
    """Every Python file of the trees: *.py, and scripts with a python shebang."""
    out = []
    for tree in TREES:
        for d, _, names in os.walk(os.path.join(ROOT, tree)):
            for n in sorted(names):
                p = os.path.join(d, n)
                if n.endswith(".py"):
                    out.append(p)
                    continue
                try:
                    with open(p, "rb") as f:
                        first = f.readline()
                except OSError:
                    continue
                if first.startswith(b"#!") and b"python" in first:
                    out.append(p)
    return out


def imports(path):
    """{module: line} of every absolute import in a file, nested ones too."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.setdefault(a.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.setdefault(node.module, node.lineno)
    return found


def install_deps_list(*extra):
    """(packages, {module: (package, via)}) as install-deps --list prints them."""
    pkgs, table, _ = install_deps_tables(*extra)
    return pkgs, table


def install_deps_tables(*extra):
    """(packages, {module: (package, via)}, {command: package}) of install-deps --list."""
    p = subprocess.run([INSTALL_DEPS, "--list"] + list(extra), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, "install-deps --list: %d %s" % (p.returncode, p.stderr)
    pkgs, table, commands = set(), {}, {}
    for line in p.stdout.splitlines():
        w = line.split()
        if w[0] == "package":
            pkgs.add(w[1])
        elif w[0] == "command" and len(w) == 3:
            commands[w[1]] = w[2]
        elif w[0] == "module":
            assert len(w) in (3, 5) and (len(w) == 3 or w[3] == "via"), line
            table[w[1]] = (w[2], w[4] if len(w) == 5 else None)
        else:
            raise AssertionError("install-deps --list: unexpected line %r" % line)
    return pkgs, table, commands


def local_modules():
    """Names the tree's own files can be imported as (harness, broker, cpu, ...)."""
    return {os.path.splitext(os.path.basename(p))[0] for p in python_files()}


def third_party_imports():
    """{module: "file:line"} of the imports that are neither stdlib nor local."""
    local = local_modules()
    out = {}
    for path in python_files():
        for mod, line in imports(path).items():
            top = mod.split(".")[0]
            if top in sys.stdlib_module_names or top in local:
                continue
            out.setdefault(mod, "%s:%d" % (os.path.relpath(path, ROOT), line))
    return out


CALLS = {"run", "Popen", "call", "check_call", "check_output", "which"}


def commands_run(path):
    """{program: line} of the programs a file runs by a literal name: the first
    word of subprocess.run/Popen/call/check_*, shutil.which and of a
    wrapper=[...] argument, given as a string or a module-level string
    constant, and the argument of any function of the file that passes its
    parameter to shutil.which."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    consts = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and \
                isinstance(n.value.value, str):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    consts[t.id] = n.value.value
    calls = set(CALLS)
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef) and n.args.args:
            param = n.args.args[0].arg
            for c in ast.walk(n):
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and \
                        c.func.attr == "which" and c.args and \
                        isinstance(c.args[0], ast.Name) and c.args[0].id == param:
                    calls.add(n.name)

    def first(e):
        if isinstance(e, ast.BinOp):
            return first(e.left)
        if isinstance(e, (ast.List, ast.Tuple)) and e.elts:
            return first(e.elts[0])
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return e.value
        if isinstance(e, ast.Name):
            return consts.get(e.id)
        return None
    found = {}
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
        args = []
        if name in calls and n.args:
            args.append(n.args[0])
        args += [k.value for k in n.keywords if k.arg == "wrapper"]
        for a in args:
            prog = first(a)
            if prog:
                found.setdefault(prog, n.lineno)
    return found


def loaded_outside_stdlib(module):
    """{top-level module: one file of it} that /usr/bin/python3 loads, from
    outside the standard library, to import module."""
    code = ("import importlib, sys, sysconfig\n"
            "std = {sysconfig.get_paths()[k] for k in ('stdlib', 'platstdlib')}\n"
            "before = set(sys.modules)\n"
            "importlib.import_module(%r)\n"
            "for name, m in sorted(sys.modules.items()):\n"
            "    f = getattr(m, '__file__', None)\n"
            "    if name in before or not f or any(f.startswith(s + '/') and\n"
            "            '-packages/' not in f for s in std):\n"
            "        continue\n"
            "    print(name.split('.')[0], f)\n" % module)
    p = subprocess.run(["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, "/usr/bin/python3 cannot import %s:\n%s" % (module, p.stderr)
    out = {}
    for line in p.stdout.splitlines():
        top, f = line.split(" ", 1)
        out.setdefault(top, f)
    return out


def essential(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Essential}", pkg], capture_output=True,
                       text=True, timeout=30)
    return p.stdout.strip() == "yes"


def dpkg_owner(path):
    """The package that ships path: as named (a /usr/bin symlink belongs to the
    package that names the program), else its target, else (usrmerge) /lib."""
    real = os.path.realpath(path)
    tries = [path, real]
    if real.startswith("/usr/lib/"):
        tries.append(real[len("/usr"):])
    for t in tries:
        p = subprocess.run(["dpkg", "-S", t], capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            return p.stdout.split(":", 1)[0].strip()
    raise AssertionError("no Debian package owns %s (dpkg -S: %s)" % (path, p.stderr.strip()))


def transitional_hint(pkg, owner):
    """Why a listed package may not own its program: an empty transitional
    package (Debian 12's nginx-light depends on nginx, which ships the
    binary) installs it only through a dependency; list the owner instead."""
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}", pkg], capture_output=True,
                       text=True, timeout=30)
    deps = {d.strip().split(" ")[0].split(":")[0] for d in p.stdout.replace("|", ",").split(",")}
    if p.returncode == 0 and owner in deps:
        return " (%s only depends on %s: list %s)" % (pkg, owner, owner)
    return ""


@test
def test_every_import_is_stdlib_local_or_in_the_table():
    _, table = install_deps_list("bench")
    missing = ["%s (%s)" % (m, where) for m, where in sorted(third_party_imports().items())
               if m not in table]
    assert not missing, ("imported but not in the MODULES table of tools/install-deps: %s"
                         % ", ".join(missing))


@test
def test_every_package_a_module_loads_is_installed_by_install_deps():
    pkgs, table = install_deps_list("bench")
    top_of = {m.split(".")[0]: m for m in table}
    wrong = []
    checked = 0
    for mod in sorted(third_party_imports()):
        for top, f in sorted(loaded_outside_stdlib(mod).items()):
            pkg = dpkg_owner(f)
            checked += 1
            if pkg not in pkgs:
                wrong.append("%s (loaded by `import %s`, %s) is in package %s, which "
                             "tools/install-deps does not install" % (top, mod, f, pkg))
            row = top_of.get(top)
            if row is None:
                wrong.append("%s (loaded by `import %s`, package %s) is not in the MODULES "
                             "table of tools/install-deps" % (top, mod, pkg))
            elif table[row][0] != pkg:
                wrong.append("MODULES table: %s is from %s, not %s" % (row, pkg, table[row][0]))
    assert checked, "no module outside the standard library found: the check checks nothing"
    assert not wrong, "\n".join(wrong)
    print("  %d modules outside the standard library, each from a listed package" % checked)


@test
def test_every_table_row_is_needed():
    pkgs, table = install_deps_list("bench")
    direct = third_party_imports()
    stale = []
    for mod, (pkg, via) in sorted(table.items()):
        if pkg not in pkgs:
            stale.append("%s: package %s is not on the list" % (mod, pkg))
        if via is None:
            if mod not in direct:
                stale.append("%s is imported nowhere under %s" % (mod, ", ".join(TREES)))
        elif via not in table or table[via][1] is not None:
            stale.append("%s: via %s, which is not a directly imported row" % (mod, via))
        elif mod.split(".")[0] not in loaded_outside_stdlib(via):
            stale.append("%s: `import %s` does not load it" % (mod, via))
    assert not stale, "stale rows in the MODULES table of tools/install-deps:\n" + "\n".join(stale)


@test
def test_every_program_run_is_in_the_table():
    _, _, commands = install_deps_tables("bench", "fuzz")
    missing = []
    seen = 0
    for path in python_files():
        for prog, line in sorted(commands_run(path).items()):
            seen += 1
            if prog == "/usr/bin/python3":
                continue  # install-deps's module check runs it
            if os.path.basename(prog) in commands:
                continue
            exe = prog if os.path.isabs(prog) else shutil.which(prog)
            if exe and essential(dpkg_owner(exe)):
                continue  # dpkg, coreutils, ...: on every Debian system
            missing.append("%s (%s:%d)" % (prog, os.path.relpath(path, ROOT), line))
    assert seen, "no program found: the check checks nothing"
    assert not missing, ("run but not in the COMMANDS table of tools/install-deps: %s"
                         % ", ".join(missing))


@test
def test_every_table_program_comes_from_its_listed_package():
    pkgs, _, commands = install_deps_tables("bench", "fuzz")
    wrong = []
    checked = 0
    for prog, pkg in sorted(commands.items()):
        if pkg not in pkgs:
            wrong.append("%s: package %s is not on the list" % (prog, pkg))
        exe = shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if exe is None:
            base, _, _ = install_deps_tables()
            assert pkg not in base, "%s (package %s) is not installed" % (prog, pkg)
            continue  # a bench or fuzz program, not installed here
        checked += 1
        owner = dpkg_owner(exe)
        if owner != pkg:
            wrong.append("COMMANDS table: %s (%s) is from %s, not %s%s" % (
                prog, exe, owner, pkg, transitional_hint(pkg, owner)))
    assert checked, "no program of the table is installed: the check checks nothing"
    assert not wrong, "\n".join(wrong)


@test
def test_install_deps_check_passes():
    p = subprocess.run([INSTALL_DEPS, "--check"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "tools/install-deps --check: exit %d\n%s%s" % (
        p.returncode, p.stdout, p.stderr)


DEPS = os.path.join(ROOT, "tools", "deps")


def deps_report(root):
    """(exit status, output) of tools/deps over the tree at root."""
    p = subprocess.run(["/usr/bin/python3", DEPS, root], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout + p.stderr


@test
def test_no_include_cycle_across_folders():
    rc, out = deps_report(ROOT)
    assert rc == 0 and "cycles across folders: 0" in out, (
        "tools/deps finds a cycle across the folders of src/ (exit %d); each module gets "
        "the handles it uses instead of including a higher folder's header:\n%s"
        % (rc, out[out.find("cycles across folders"):]))
    # The check can fail: core/ (the bottom) including the program's state
    # (sgd/, the top) closes a cycle, and tools/deps says so.
    with tempfile.TemporaryDirectory(prefix="sgd-deps-") as tmp:
        for d in ("src", "include"):
            shutil.copytree(os.path.join(ROOT, d), os.path.join(tmp, d))
        with open(os.path.join(tmp, "src", "core", "log.c"), "a") as f:
            f.write('\n#include "sg/app.h"\n')
        rc, out = deps_report(tmp)
    assert rc == 1 and "core -> sgd" in out and "sgd -> core" in out, (
        "tools/deps missed the cycle of a core/ file including sg/app.h (exit %d):\n%s"
        % (rc, out))


if __name__ == "__main__":
    sys.exit(run(sys.argv))
