# shellcheck shell=bash
# Shared by eng/run.sh, eng/test.sh and eng/processes.sh.

# library_build_settings -- decides, once per clone, whether the AppHost's publish targets can be
# built here. Library.AppHost's Azure Container Apps environment and Docker Compose target need
# Aspire.Hosting.Azure.AppContainers and Aspire.Hosting.Docker, which some NuGet feeds (this build
# machine's) do not serve. Where they do not restore, .local/build.props (imported by
# Directory.Build.props, so a plain `dotnet build` agrees) turns LibraryPublishTargets off, and
# this says in one line what was left out.
library_build_settings() {
  local root props probe
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  props="$root/.local/build.props"
  if [[ ! -s "$props" ]]; then
    mkdir -p "$root/.local"
    probe="$(mktemp -d)"
    if dotnet restore "$root/Library.AppHost/Library.AppHost.csproj" -p:LibraryPublishTargets=true -nologo -v q >"$probe/restore.log" 2>&1; then
      echo '<Project><PropertyGroup><LibraryPublishTargets>true</LibraryPublishTargets></PropertyGroup></Project>' >"$props"
    else
      echo '<Project><PropertyGroup><LibraryPublishTargets>false</LibraryPublishTargets></PropertyGroup></Project>' >"$props"
    fi
    rm -rf "$probe"
  fi
  if grep -q '>false<' "$props"; then
    echo "[build] Library.AppHost: left out the Azure Container Apps environment and the Docker Compose target (Aspire.Hosting.Azure.AppContainers, Aspire.Hosting.Docker do not restore from this feed; azd still deploys from the manifest; delete .local/build.props to check again)" >&2
  fi
}
