#!/usr/bin/env bash
# `make upgrade-check`: would the newest releases pyproject.toml allows break us?
#
# The locks keep `make test` and CI on the versions they were made with; this is how the
# project learns, as a report and on purpose, what the next `make lock` would bring. A copy of
# the tree (tracked and new files, nothing ignored) gets a throwaway venv with the newest
# versions pyproject allows, then ruff, mypy and the unit suite run there. The report names
# every version that differs from locks/dev.txt. Nothing in this checkout is touched.
#
#   usage: tools/upgrade_check.sh        (PYTHON: the interpreter; TORCH_WHEELS: torch's folder)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
torch_wheels=${TORCH_WHEELS:-/opt/wheels}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/tree"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- --ignore-failed-read -cf -) | tar -x -C "$work/tree"
cd "$work/tree"
# A repository of its own: some tests list the tree as a fresh clone would (git ls-files).
git init --quiet && git add --all && git -c user.name=upgrade-check -c user.email=none \
    commit --quiet --message "upgrade-check copy" || exit 2

# What locks/dev.txt is resolved from (tools/lock.py's spec), at the newest versions allowed;
# torch stays the CPU build the lock pins: any other torch is a CUDA build of several GB (and
# pyproject's range would admit one).
"$python" tools/lock.py --requirements dev > "$work/spec.txt" || exit 2
sed -n '1,/^--no-deps$/p' "$work/spec.txt" | grep -v '^--no-deps$' > "$work/requirements.txt"
sed -n '/^--no-deps$/,$p' "$work/spec.txt" | grep -v '^--no-deps$' > "$work/no-deps.txt"
grep -o '^torch==[^ ]*' "$root/locks/dev.txt" > "$work/torch.txt"

venv=$work/venv
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --find-links "$torch_wheels" -c "$work/torch.txt")
"${pip[@]}" --upgrade pip || exit 2
"${pip[@]}" --upgrade --upgrade-strategy eager -r "$work/requirements.txt" || exit 2
"${pip[@]}" --no-deps -r "$work/no-deps.txt" || exit 2
"${pip[@]}" --no-deps --no-build-isolation -e . || exit 2

echo "== versions that differ from locks/dev.txt (locked -> newest allowed)"
"$venv/bin/python" - "$root/locks/dev.txt" <<'PY'
import re
import sys
from importlib import metadata

locked = dict(
    re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", open(sys.argv[1]).read(), re.MULTILINE)
)
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
locked = {norm(k): v for k, v in locked.items()}
for dist in sorted(metadata.distributions(), key=lambda d: norm(d.metadata["Name"])):
    name = norm(dist.metadata["Name"])
    if name != "tritone" and locked.get(name) != dist.version:
        print(f"  {name}: {locked.get(name, '(not locked)')} -> {dist.version}")
PY

failed=()
echo "== ruff"
"$venv/bin/ruff" check . && "$venv/bin/ruff" format --check . || failed+=(ruff)
echo "== mypy"
"$venv/bin/mypy" || failed+=(mypy)
echo "== unit tests"
"$venv/bin/pytest" -q -p no:cacheprovider tests/unit || failed+=(unit)

if [ ${#failed[@]} -gt 0 ]; then
    echo "upgrade-check: with the newest versions allowed, ${failed[*]} failed (see above)."
    exit 1
fi
echo "upgrade-check: ruff, mypy and the unit suite pass with the newest versions allowed."
