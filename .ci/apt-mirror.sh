# Sourced by .ci/mesa26 and .ci/test-apt-mirror (bash). No package host is written into the
# repository: the Debian mirror is the one this machine's apt already uses.

# debian_mirror [FILE...]: prints the first Debian archive URI of the apt source files given
# (default: /etc/apt/sources.list, then sources.list.d/*.list and *.sources): one-line
# `deb [options] URI SUITE COMPONENT...` entries and deb822 stanzas (`Types: deb`, `URIs:`),
# of a Debian suite (bookworm, trixie, stable, ...: not another distribution's archive), skipping
# security archives, disabled stanzas (`Enabled: no`) and commented-out lines.
# Returns 1 (printing nothing) when there is none.
debian_mirror() {
  local files=("$@")
  if [ ${#files[@]} -eq 0 ]; then
    files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  fi
  # Debian's suites (codenames and aliases), with -updates / -backports but not -security.
  local suites='^(buster|bullseye|bookworm|trixie|forky|duke|sid|stable|testing|unstable|oldstable|oldoldstable)(-updates|-backports)?$'
  local f
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources) awk -v DEBIAN="$suites" -f - "$f" <<'AWK' && return 0 ;;
function flush() {
  if (types ~ /(^| )deb( |$)/ && enabled != "no" && uri != "" && uri !~ /-security\/?$/ && suites ~ DEBIAN) {
    print uri; found = 1; exit
  }
  types = ""; uri = ""; suites = ""; enabled = ""
}
/^[ \t]*#/ { next }
/^[ \t]*$/ { flush(); next }
{
  key = tolower($1); sub(/:$/, "", key)
  if (key == "types") { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; sub(/^ /, "", types) }
  else if (key == "uris") uri = $2
  else if (key == "suites") suites = $2
  else if (key == "enabled") enabled = tolower($2)
}
END { if (!found) flush(); exit !found }
AWK
      *) awk -v DEBIAN="$suites" '
/^[ \t]*deb[ \t]/ {
  i = 2
  if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
  uri = $i; suite = $(i + 1)
  if (uri != "" && uri !~ /-security\/?$/ && suite ~ DEBIAN) { print uri; found = 1; exit }
}
END { exit !found }' "$f" && return 0 ;;
    esac
  done
  return 1
}
