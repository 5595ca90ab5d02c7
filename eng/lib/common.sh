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
  echo "$root/Library.WithoutAppHost.slnf"
}
