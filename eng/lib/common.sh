# shellcheck shell=bash
# Shared by eng/run.sh and eng/test.sh.

# Prints the solution (or solution filter) this machine can build. The AppHost and its tests
# need the Aspire packages; where the NuGet feed lacks them they are left out, and this says so
# loudly rather than skipping in silence.
library_solution() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if dotnet restore "$root/Library.AppHost/Library.AppHost.csproj" -nologo -v q >/dev/null 2>&1; then
    echo "$root/Library.sln"
    return
  fi
  cat >&2 <<'BANNER'
################################################################################
##  NOTICE: the Aspire packages (Aspire.AppHost.Sdk 13.5.2, Aspire.Hosting.*)  ##
##  cannot be restored from this machine's NuGet feed.                         ##
##  SKIPPED: Library.AppHost and tests/Library.AppHost.Tests                   ##
##  (built and run where the feed has Aspire and Docker runs).                 ##
##  Everything else is built and tested: Library.WithoutAppHost.slnf           ##
################################################################################
BANNER
  write_solution_filter "$root"
  echo "$root/Library.WithoutAppHost.slnf"
}

# Library.WithoutAppHost.slnf = every project of Library.sln but the AppHost and its tests,
# rewritten from the solution each time so a new project is never left out.
write_solution_filter() {
  python3 - "$1" <<'PY'
import json, re, sys, os
root = sys.argv[1]
with open(os.path.join(root, "Library.sln"), encoding="utf-8-sig") as f:
    projects = [p for p in re.findall(r'"([^"]+\.csproj)"', f.read()) if "AppHost" not in p]
with open(os.path.join(root, "Library.WithoutAppHost.slnf"), "w") as f:
    json.dump({"solution": {"path": "Library.sln", "projects": projects}}, f, indent=2)
    f.write("\n")
PY
}
