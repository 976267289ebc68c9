#!/usr/bin/env bash
# report.sh RESULTS_DIR MODE: Markdown tables (with asof/nginx and aptly/asof ratios and
# the targets) from the TSV files benches/run.sh writes. Can be re-run on old results.
set -euo pipefail
R=$1
MODE=${2:-?}
# shellcheck source=benches/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

col() { # col FILE NAME: prints the column index (1-based) of a header name
  head -1 "$1" | tr '\t' '\n' | grep -nx "$2" | cut -d: -f1
}
# get FILE TEST SERVER COLUMN (serving.tsv)
sget() { awk -F'\t' -v t="$1" -v s="$2" -v c="$(col "$R/serving.tsv" "$3")" '$1==t && $2==s {print $c}' "$R/serving.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt() { awk -v x="$1" -v d="${2:-1}" 'BEGIN{printf "%.*f", d, x}'; }

echo
echo "## Results ($MODE mode)"

if [[ -f $R/serving.tsv ]]; then
  echo
  echo "### a. Serving: asof serve vs nginx (wrk -t2 -c64, keep-alive, 127.0.0.1)"
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
  if [[ -f $R/rss.tsv ]]; then
    hwm=$(awk -F'\t' '$1=="asof_serve_vmhwm_kb"{print $2}' "$R/rss.tsv")
    ng=$(awk -F'\t' '$1=="nginx_total_vmhwm_kb"{print $2}' "$R/rss.tsv")
    echo
    echo "Peak RSS after the load tests: asof serve $(fmt "$(awk -v k="$hwm" 'BEGIN{print k/1024}')") MB (VmHWM); nginx master + workers $(fmt "$(awk -v k="$ng" 'BEGIN{print k/1024}')") MB in total."
  fi
fi

if [[ -f $R/publish.tsv ]]; then
  echo
  echo "### b. Publishing a history"
  echo
  echo "Per label: the first publish, then the median over the later publishes (same absolute number of"
  echo "touched packages at both sizes). \"metadata\" is asof.db after a WAL checkpoint; \"blobs\" is du of blobs/."
  echo
  echo "| archive | publishes | files | first publish s | first: metadata MB / blobs MB | later: changed paths | later: wall s (median) | later: metadata B (median) | B per changed path (sum/sum) | later: blobs MB (median) | peak RSS MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for label in $(tail -n +2 "$R/publish.tsv" | cut -f1 | awk '!seen[$0]++'); do
    rows=$(awk -F'\t' -v l="$label" '$1==l' "$R/publish.tsv")
    first=$(head -1 <<<"$rows")
    later=$(tail -n +2 <<<"$rows")
    n=$(wc -l <<<"$rows")
    files=$(cut -f3 <<<"$first")
    fw=$(cut -f10 <<<"$first")
    fdb=$(awk -F'\t' '{printf "%.1f", $12/1e6}' <<<"$first")
    fbl=$(awk -F'\t' '{printf "%.1f", $14/1e6}' <<<"$first")
    if [[ -n $later ]]; then
      ch=$(awk -F'\t' '{print $4+$5+$6}' <<<"$later" | median)
      lw=$(cut -f10 <<<"$later" | median)
      ldb=$(cut -f13 <<<"$later" | median)
      per=$(awk -F'\t' '{g+=$13; c+=$4+$5+$6} END{print (c ? g/c : "n/a")}' <<<"$later")
      lbl=$(awk -F'\t' '{print $15/1e6}' <<<"$later" | median)
    else
      ch=n/a lw=n/a ldb=n/a per=n/a lbl=n/a
    fi
    rss=$(cut -f11 <<<"$rows" | sort -n | tail -1)
    echo "| $label | $n | $files | $fw | $fdb / $fbl | $ch | $lw | $(fmt "$ldb" 0) | $(fmt "$per" 0) | $(fmt "$lbl") | $(fmt "$(awk -v k="$rss" 'BEGIN{print k/1024}')" 0) |"
  done
  echo
  echo "Every publish (TSV: $R/publish.tsv):"
  echo
  echo "| archive | tree | files | +added | ~changed | -removed | new blobs | wall s | metadata growth B | blob growth MB | peak RSS MB |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  tail -n +2 "$R/publish.tsv" | awk -F'\t' '{printf "| %s | %s | %d | %d | %d | %d | %d | %s | %d | %.1f | %.0f |\n", $1, $2, $3, $4, $5, $6, $7, $10, $13, $15/1e6, $11/1024}'
fi

if [[ -f $R/aptly.tsv ]]; then
  echo
  echo "### c. Time to a servable snapshot: aptly vs asof (same .deb files, same history)"
  echo
  echo "aptly: \`repo add\` (new files) + \`repo remove\` (old versions) + \`snapshot create\` + \`publish snapshot|switch\`"
  echo "(skip-signing, skipContentsPublishing). asof: \`asof publish\` of the generated tree (indices made by the generator,"
  echo "not timed)."
  echo
  echo "| tool | first snapshot s | later snapshots s (median) | aptly/asof (later) | disk after first MB | disk growth per later snapshot MB (median) | database growth per later snapshot KB (median) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  am=$(awk -F'\t' '$1=="aptly" && $2!="0000"{print $5}' "$R/aptly.tsv" | median)
  sm=$(awk -F'\t' '$1=="asof" && $2!="0000"{print $5}' "$R/aptly.tsv" | median)
  for tool in aptly asof; do
    first=$(awk -F'\t' -v t="$tool" '$1==t && $2=="0000"' "$R/aptly.tsv")
    lm=$(awk -F'\t' -v t="$tool" '$1==t && $2!="0000"{print $5}' "$R/aptly.tsv" | median)
    dg=$(awk -F'\t' -v t="$tool" '$1==t && $2!="0000"{print $7/1e6}' "$R/aptly.tsv" | median)
    dbg=$(awk -F'\t' -v t="$tool" '$1==t && $2!="0000"{print $9/1e3}' "$R/aptly.tsv" | median)
    r=''
    [[ $tool == aptly ]] && r="**$(ratio "$am" "$sm")**"
    echo "| $tool | $(cut -f5 <<<"$first") | $lm | $r | $(awk -F'\t' '{printf "%.1f", $6/1e6}' <<<"$first") | $(fmt "$dg" 2) | $(fmt "$dbg" 1) |"
  done
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

if [[ -f $R/load.tsv ]]; then
  echo
  awk -F'\t' '{printf "%s%s %s", (NR > 1 ? "; " : "Load average (1/5/15 min) before each phase: "), $1, $2} END{print ". (The 1-minute figure includes the tail of the previous phase; other work on the machine shows up here too.)"}' "$R/load.tsv"
fi

# Targets.
if [[ -f $R/serving.tsv && -f $R/publish.tsv ]]; then
  echo
  echo "### Targets"
  echo
  echo "| target | measured | met |"
  echo "|---|---|---|"
  yes_no() { awk -v x="$1" -v op="$2" -v y="$3" 'BEGIN{ if (x == "n/a") {print "n/a"; exit} ok = (op == ">=") ? (x >= y) : (x < y); print ok ? "yes" : "**no**" }'; }
  r=$(ratio "$(sget small asof req_per_s)" "$(sget small nginx req_per_s)")
  echo "| small files ≥ 1.0× nginx req/s | $r× | $(yes_no "$r" '>=' 1.0) |"
  r=$(ratio "$(sget large asof MB_per_s)" "$(sget large nginx MB_per_s)")
  r2=$(ratio "$(sget huge asof MB_per_s)" "$(sget huge nginx MB_per_s)")
  echo "| large files ≥ 0.9× nginx bytes/s | $r× (largest pool files), $r2× (large files) | $(yes_no "$r" '>=' 0.9) / $(yes_no "$r2" '>=' 0.9) |"
  p=$(fmt "$(sget mix asof p99_ms)" 2)
  echo "| apt-like mix p99 < 5 ms at 64 connections | $p ms | $(yes_no "$p" '<' 5) |"
  first_label=$(awk -F'\t' 'NR==2{print $1}' "$R/publish.tsv")
  lw=$(awk -F'\t' -v l="$first_label" '$1==l' "$R/publish.tsv" | tail -n +2 | cut -f10 | median)
  per=$(awk -F'\t' -v l="$first_label" '$1==l' "$R/publish.tsv" | tail -n +2 | awk -F'\t' '{g+=$13; c+=$4+$5+$6} END{print (c ? g/c : "n/a")}')
  echo "| publish after the churn step < 2 s ($first_label) | $lw s | $(yes_no "$lw" '<' 2) |"
  echo "| metadata < 200 B per changed path | $(fmt "$per" 0) B | $(yes_no "$per" '<' 200) |"
  if [[ -f $R/aptly.tsv ]]; then
    r=$(ratio "$am" "$sm")
    echo "| ≥ 10× faster than aptly to a servable snapshot | $r× | $(yes_no "$r" '>=' 10) |"
  fi
  if [[ -f $R/rss.tsv ]]; then
    mb=$(awk -F'\t' '$1=="asof_serve_vmhwm_kb"{printf "%.0f", $2/1024}' "$R/rss.tsv")
    echo "| asof serve RSS < 100 MB | $mb MB | $(yes_no "$mb" '<' 100) |"
  fi
fi
