#!/usr/bin/env bash
# report.sh RESULTS_DIR [MODE]: Markdown from the TSV files benches/run.sh writes: first the
# rows of issue 13's target table (figures, reference, ratio, target, met), also written to
# RESULTS_DIR/targets.tsv and targets.json, then the details. Can be re-run on old results.
set -euo pipefail
R=$1
# shellcheck source=benches/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

param() { awk -F'\t' -v k="$1" '$1==k{print $2}' "$R/params.tsv" 2>/dev/null; }
MODE=${2:-$(param mode)}
col() { # col FILE NAME: the column index (1-based) of a header name
  head -1 "$1" | tr '\t' '\n' | grep -nx "$2" | cut -d: -f1
}
# sget TEST SERVER COLUMN (serving.tsv)
sget() { awk -F'\t' -v t="$1" -v s="$2" -v c="$(col "$R/serving.tsv" "$3")" '$1==t && $2==s {print $c}' "$R/serving.tsv"; }
# pget LABEL COLUMN [FIRST_TREE [LAST_TREE]]: one value per publish of publish.tsv
pget() {
  awk -F'\t' -v l="$1" -v c="$(col "$R/publish.tsv" "$2")" -v a="${3:-0000}" -v b="${4:-9999}" \
    '$1==l && $2>=a && $2<=b {print $c}' "$R/publish.tsv"
}
# pchanges LABEL FIRST LAST: added+changed+removed per publish
pchanges() { awk -F'\t' -v l="$1" -v a="$2" -v b="$3" '$1==l && $2>=a && $2<=b {print $5+$6+$7}' "$R/publish.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt() { awk -v x="$1" -v d="${2:-1}" 'BEGIN{ if (x == "" || x == "nan" || x == "n/a") print "n/a"; else printf "%.*f", d, x }'; }
# check X OP Y: yes, no or n/a
check() {
  awk -v x="$1" -v op="$2" -v y="$3" 'BEGIN{ if (x == "" || x == "n/a" || x == "nan") {print "n/a"; exit}
    ok = (op == ">=") ? (x + 0 >= y) : (op == "<=") ? (x + 0 <= y) : (x + 0 < y); print ok ? "yes" : "no" }'
}
# all_met A B ...: yes if every one is yes, n/a if any is n/a, else no
all_met() {
  local v out=yes
  for v in "$@"; do
    if [[ $v == n/a ]]; then out=n/a; elif [[ $v == no && $out != n/a ]]; then out=no; fi
  done
  echo "$out"
}
kb_mb() { awk -v k="$1" 'BEGIN{ if (k == "") print "n/a"; else printf "%.0f", k / 1024 }'; }

TARGETS=$R/targets.tsv
printf 'row\tmeasure\tasof\treference\tratio\ttarget\tmet\n' >"$TARGETS"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TARGETS"; }

# 1-3: serving.
if [[ -f $R/serving.tsv ]]; then
  a=$(sget small asof req_per_s) n=$(sget small nginx req_per_s) r=$(ratio "$a" "$n")
  row 1 "small files (InRelease, Release, Packages.xz), req/s vs nginx, c=64" "$(fmt "$a" 0) req/s" \
    "nginx $(fmt "$n" 0) req/s" "${r}×" "≥ 1.0×" "$(check "$r" '>=' 1.0)"
  a=$(sget mix asof req_per_s) n=$(sget mix nginx req_per_s) r=$(ratio "$a" "$n") p=$(sget mix asof p99_ms)
  ids=''
  [[ -f $R/mix-ids.json ]] && ids=$(jq -r '" over \(.snapshots) snapshots (\(.exact_ids) exact IDs, \(.ids_between_publishes + .ids_after_latest) in between)"' "$R/mix-ids.json")
  row 2 "apt-like mix$ids" "$(fmt "$a" 0) req/s, p99 $(fmt "$p" 2) ms" "nginx $(fmt "$n" 0) req/s, p99 $(fmt "$(sget mix nginx p99_ms)" 2) ms" \
    "${r}×" "≥ 1.0×, p99 < 5 ms" "$(all_met "$(check "$r" '>=' 1.0)" "$(check "$p" '<' 5)")"
  a=$(sget huge asof MB_per_s) n=$(sget huge nginx MB_per_s) r=$(ratio "$a" "$n")
  a2=$(sget large asof MB_per_s) n2=$(sget large nginx MB_per_s) r2=$(ratio "$a2" "$n2")
  row 3 "large files, bytes/s vs nginx (large random files; largest 4 pool files)" "$(fmt "$a" 0); $(fmt "$a2" 0) MB/s" \
    "nginx $(fmt "$n" 0); $(fmt "$n2" 0) MB/s" "${r}×; ${r2}×" "≥ 0.95×" "$(all_met "$(check "$r" '>=' 0.95)" "$(check "$r2" '>=' 0.95)")"
fi

# 4: publish after churn, vs aptly on the same trees.
if [[ -f $R/publish.tsv && -f $R/aptly.tsv ]]; then
  last=$(awk -F'\t' '$1=="aptly"{t=$2} END{print t}' "$R/aptly.tsv")
  am=$(awk -F'\t' '$1=="aptly" && $2!="0000"{print $5}' "$R/aptly.tsv" | median)
  sm=$(pget main wall_s 0001 "$last" | median)
  ch=$(pchanges main 0001 "$last" | median)
  mode=$(pget main mode 0001 "$last" | sort -u | paste -sd/)
  r=$(ratio "$am" "$sm")
  row 4 "publish after $(awk -v c="$(param churn)" 'BEGIN{print c * 100}')% churn, $(param packages)-package suite, median of publishes 0001-$last (≈ $(fmt "$ch" 0) changed paths; asof: $mode)" \
    "$(fmt "$sm" 3) s" "aptly $(fmt "$am" 2) s" "${r}×" "≥ 10×, asof < 1.1 s" "$(all_met "$(check "$r" '>=' 10)" "$(check "$sm" '<' 1.1)")"
fi

# 5: the same number of changes into a 10× larger archive.
if [[ -f $R/publish.tsv ]] && [[ -n $(pget large tree) ]]; then
  lw=$(pget large wall_s 0001 | median) lc=$(pchanges large 0001 9999 | median)
  mw=$(pget main wall_s 0001 | median) mc=$(pchanges main 0001 9999 | median)
  lf=$(pget large files 0000 0000) mf=$(pget main files 0000 0000)
  r=$(ratio "$lw" "$mw")
  row 5 "publish of ≈ $(fmt "$lc" 0) changes into a $(fmt "$lf" 0)-file archive (median); the same ($(fmt "$mc" 0)) into the $(fmt "$mf" 0)-file one" \
    "$(fmt "$lw" 3) s" "$(fmt "$mw" 3) s at $(fmt "$mf" 0) files" "${r}× as the archive grows $(ratio "$lf" "$mf")×" \
    "< 3 s, and flat (≤ 2×)" "$(all_met "$(check "$lw" '<' 3)" "$(check "$r" '<=' 2)")"
fi

# 6: peak RSS.
if [[ -f $R/publish.tsv ]] && [[ -n $(pget large tree) ]]; then
  rss=$(pget large peak_rss_kb 0000 0000) files=$(pget large files 0000 0000)
  row 6a "peak RSS: first publish of $(fmt "$files" 0) files" "$(kb_mb "$rss") MB" "" "" "< 200 MB" "$(check "$(kb_mb "$rss")" '<' 200)"
fi
if [[ -f $R/rss.tsv ]]; then
  hwm=$(awk -F'\t' '$1=="asof_serve_vmhwm_kb"{print $2}' "$R/rss.tsv")
  ng=$(awk -F'\t' '$1=="nginx_total_vmhwm_kb"{print $2}' "$R/rss.tsv")
  row 6b "peak RSS: asof serve after the serving load (VmHWM)" "$(kb_mb "$hwm") MB" "nginx master + workers $(kb_mb "$ng") MB" "" \
    "< 100 MB" "$(check "$(kb_mb "$hwm")" '<' 100)"
fi

# 7: resolve latency from the lookup bench.
if [[ -f $R/lookup.tsv && $(wc -l <"$R/lookup.tsv") -ge 2 ]]; then
  cold=$(awk -F'\t' '$1=="cold"{print $6}' "$R/lookup.tsv") warm=$(awk -F'\t' '$1=="warm"{print $6}' "$R/lookup.tsv")
  shape=$(awk -F'\t' 'NR==2{printf "%d snapshots × %d paths, %d random queries", $2, $3, $4}' "$R/lookup.tsv")
  how="cargo bench --bench lookup"
  [[ $(param lookup) == tiny ]] && how="cargo test --bench lookup: tiny catalog"
  worst=$(printf '%s\n%s\n' "$cold" "$warm" | sort -g | tail -1)
  row 7 "resolve (ID, path) p99 cold / warm, $shape ($how)" "$(fmt "$cold" 1) / $(fmt "$warm" 1) µs" "" "" \
    "< 20 µs" "$(check "$worst" '<' 20)"
fi

jq -R -s 'split("\n") | map(select(length > 0) | split("\t")) | .[0] as $h | .[1:] | map([$h, .] | transpose | map({(.[0]): .[1]}) | add)' \
  "$TARGETS" >"$R/targets.json"

echo
echo "## Issue 13 targets ($MODE mode)"
echo
if [[ $MODE == quick ]]; then
  echo "Quick mode: smaller sizes than the targets are stated for; a smoke test of every row, not a verdict."
  echo
fi
echo "| # | measure | asof | reference | ratio | target | met |"
echo "|---|---|---:|---:|---:|---|---|"
tail -n +2 "$TARGETS" | awk -F'\t' '{ m = ($7 == "yes") ? "yes" : ($7 == "no") ? "**no**" : $7
  printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, ($5 == "" ? "" : "**" $5 "**"), $6, m }'

echo
echo "## Details"

if [[ -f $R/serving.tsv ]]; then
  echo
  echo "### a. Serving: asof serve vs nginx (wrk -t2 -c64, keep-alive, 127.0.0.1, $(param load_seconds) s per test)"
  echo
  echo "| test | nginx req/s | asof req/s | asof/nginx | nginx MB/s | asof MB/s | asof/nginx | nginx p50 / p99 ms | asof p50 / p99 ms | non-2xx or socket errors nginx / asof |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  declare -A NAMES=([small]="small index files (Release, InRelease, contrib Packages.xz)"
    [large]="largest 4 pool files" [huge]="large files (run.sh BENCH_BIG_SIZE)"
    [mix]="apt-like mix: random pool paths over all snapshots")
  for t in small large huge mix; do
    [[ -n $(sget "$t" nginx requests) ]] || continue
    nr=$(sget "$t" nginx req_per_s) ar=$(sget "$t" asof req_per_s)
    nb=$(sget "$t" nginx MB_per_s) ab=$(sget "$t" asof MB_per_s)
    echo "| ${NAMES[$t]} | $(fmt "$nr" 0) | $(fmt "$ar" 0) | **$(ratio "$ar" "$nr")** | $(fmt "$nb") | $(fmt "$ab") | **$(ratio "$ab" "$nb")** | $(fmt "$(sget "$t" nginx p50_ms)" 2) / $(fmt "$(sget "$t" nginx p99_ms)" 2) | $(fmt "$(sget "$t" asof p50_ms)" 2) / $(fmt "$(sget "$t" asof p99_ms)" 2) | $(sget "$t" nginx errors) / $(sget "$t" asof errors) |"
  done
  if [[ -f $R/serving-sets.tsv ]]; then
    echo
    awk -F'\t' '{sub(/_bytes$/, "", $1); printf "%s%s: %s bytes", (NR > 1 ? "; " : "File sizes, "), $1, $2} END{print "."}' "$R/serving-sets.tsv"
  fi
  if [[ -f $R/mix-ids.json ]]; then
    echo
    jq -r '"Mix: \(.requests) requests over \(.snapshots) snapshots; IDs: \(.exact_ids) exact, \(.ids_between_publishes) between two publishes, \(.ids_after_latest) a few seconds after the latest."' "$R/mix-ids.json"
  fi
fi

if [[ -f $R/publish.tsv ]]; then
  echo
  echo "### b. Publishing a history"
  echo
  echo "Per archive: the first publish, then the median over the later publishes (the same absolute number"
  echo "of touched packages at both sizes). Wall time is the whole \`asof publish\` process. \"metadata\" is"
  echo "asof.db after a WAL checkpoint; \"blobs\" is du of blobs/. Publish mode after the first: $(param publish_mode)."
  echo
  echo "| archive | publishes | files | first publish s | first: metadata MB / blobs MB | first: peak RSS MB | later: changed paths | later: wall s (median) | later: metadata B (median) | B per changed path (sum/sum) | later: blobs MB (median) | later: peak RSS MB (max) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for label in $(tail -n +2 "$R/publish.tsv" | cut -f1 | awk '!seen[$0]++'); do
    n=$(pget "$label" tree | wc -l)
    later=$(pget "$label" tree 0001)
    if [[ -n $later ]]; then
      ch=$(pchanges "$label" 0001 9999 | median)
      lw=$(pget "$label" wall_s 0001 | median)
      ldb=$(pget "$label" db_growth 0001 | median)
      per=$(awk -F'\t' -v l="$label" '$1==l && $2!="0000" {g+=$14; c+=$5+$6+$7} END{print (c ? g/c : "n/a")}' "$R/publish.tsv")
      lbl=$(pget "$label" blob_growth 0001 | awk '{print $1/1e6}' | median)
      lrss=$(kb_mb "$(pget "$label" peak_rss_kb 0001 | sort -n | tail -1)")
    else
      ch=n/a lw=n/a ldb=n/a per=n/a lbl=n/a lrss=n/a
    fi
    echo "| $label | $n | $(pget "$label" files 0000 0000) | $(fmt "$(pget "$label" wall_s 0000 0000)" 2) | $(fmt "$(pget "$label" db_bytes 0000 0000 | awk '{print $1/1e6}')") / $(fmt "$(pget "$label" blob_bytes 0000 0000 | awk '{print $1/1e6}')") | $(kb_mb "$(pget "$label" peak_rss_kb 0000 0000)") | $(fmt "$ch" 0) | $(fmt "$lw" 3) | $(fmt "$ldb" 0) | $(fmt "$per" 0) | $(fmt "$lbl") | $lrss |"
  done
  echo
  echo "Every publish (TSV: publish.tsv):"
  echo
  echo "| archive | tree | mode | files | +added | ~changed | -removed | new blobs | wall s | metadata growth B | blob growth MB | peak RSS MB |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  tail -n +2 "$R/publish.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %d | %d | %d | %d | %d | %.3f | %d | %.1f | %.0f |\n", $1, $2, $3, $4, $5, $6, $7, $8, $11, $14, $16/1e6, $12/1024}'
fi

if [[ -f $R/aptly.tsv ]]; then
  echo
  echo "### c. Time to a servable snapshot: aptly vs asof (the same trees of the main history)"
  echo
  echo "aptly: \`repo add\` (new files) + \`repo remove\` (old versions) + \`snapshot create\` + \`publish snapshot|switch\`"
  echo "(skip-signing, skipContentsPublishing). asof: \`asof publish\` of the generated tree (indices made by the"
  echo "generator, not timed), $(param publish_mode) mode after the first."
  echo
  echo "| tree | packages +added / -removed | aptly s | asof s | aptly/asof |"
  echo "|---|---:|---:|---:|---:|"
  while IFS=$'\t' read -r _ tree added removed secs _; do
    s=$(pget main wall_s "$tree" "$tree")
    echo "| $tree | $added / $removed | $(fmt "$secs" 2) | $(fmt "$s" 3) | $(ratio "$secs" "$s") |"
  done < <(awk -F'\t' '$1=="aptly"' "$R/aptly.tsv")
  echo
  echo "aptly disk after the first snapshot: $(awk -F'\t' '$1=="aptly" && $2=="0000"{printf "%.1f", $6/1e6}' "$R/aptly.tsv") MB; growth per later snapshot (median): $(fmt "$(awk -F'\t' '$1=="aptly" && $2!="0000"{print $7/1e6}' "$R/aptly.tsv" | median)" 2) MB, of which database $(fmt "$(awk -F'\t' '$1=="aptly" && $2!="0000"{print $9/1e3}' "$R/aptly.tsv" | median)" 1) KB."
fi

if [[ -f $R/hash.tsv ]]; then
  echo
  echo "### d. SHA-256 ingest: asof publish vs sha256sum (same files, page cache warm, hyperfine mean of 3)"
  echo
  echo "| command | mean s | ± s | MB/s |"
  echo "|---|---:|---:|---:|"
  awk -F'\t' '{printf "| %s | %.3f | %.3f | %.0f |\n", $1, $2, $3, $4}' "$R/hash.tsv"
  a=$(awk -F'\t' 'NR==1{print $4}' "$R/hash.tsv")
  s=$(awk -F'\t' '$1=="sha256sum"{print $4}' "$R/hash.tsv")
  h=$(awk -F'\t' '$1 ~ /hash only/{print $4}' "$R/hash.tsv")
  echo
  echo "asof/sha256sum throughput: fresh publish **$(ratio "$a" "$s")**, re-publish (hash only) **$(ratio "$h" "$s")**."
fi

if [[ -f $R/lookup.tsv && $(wc -l <"$R/lookup.tsv") -ge 2 ]]; then
  echo
  echo "### e. Resolve (ID, path): the lookup bench ($(param lookup); output in lookup.txt)"
  echo
  echo "| pass | snapshots | paths | queries | p50 µs | p99 µs | max µs |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  tail -n +2 "$R/lookup.tsv" | awk -F'\t' '{printf "| %s | %d | %d | %d | %.1f | %.1f | %.1f |\n", $1, $2, $3, $4, $5, $6, $7}'
fi

if [[ -f $R/load.tsv ]]; then
  echo
  awk -F'\t' '{printf "%s%s %s", (NR > 1 ? "; " : "Load average (1/5/15 min) before each phase: "), $1, $2} END{print ". (The 1-minute figure includes the tail of the previous phase; other work on the machine shows up here too.)"}' "$R/load.tsv"
fi
