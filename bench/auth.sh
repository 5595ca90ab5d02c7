#!/usr/bin/env bash
# What a log-in (password verification) and a token check (ES256 validation, and a remembered
# token: CachingJsonWebTokenHandler's hit) cost here.
#   bench/auth.sh [seconds per figure, default 5] [tokens: the token figures only]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dotnet build "$ROOT/bench/AuthCost" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
dotnet "$ROOT/bench/AuthCost/bin/Release/net10.0/AuthCost.dll" "${1:-5}" ${2:+"$2"}
