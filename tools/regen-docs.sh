#!/usr/bin/env bash
# Regenerates every command-and-output block of README.md and docs/*.md from the current build: each ```text block
# whose commands are '$ dmacheck ARGS' or '$ dotnet run --project src/DmaCheck.Cli -- ARGS' gets the output those
# commands print now (DocsOutputTests in update mode; without it, the same test fails on any drift), and
# docs/profiles.md is rewritten from the profiles and switches (ProfilesDocTests).
# Review the diff before committing: a changed output is a changed behaviour.
set -euo pipefail
cd "$(dirname "$0")/.."
DMACHECK_UPDATE_DOCS=1 DMACHECK_UPDATE_GOLDEN=1 dotnet test tests/DmaCheck.Tests \
  --filter "FullyQualifiedName~DocsOutputTests|FullyQualifiedName~ProfilesDocTests" "$@"
git --no-pager diff --stat -- README.md docs
