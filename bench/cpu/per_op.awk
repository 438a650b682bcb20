# Per-operation CPU (ms) from bench/cpu/wrk's cpu.tsv: awk -f bench/cpu/per_op.awk DIR/cpu.tsv. An operation is a
# round trip (token 200) for authorize_code, else a request. CLK_TCK=100: 1 tick = 10 ms.
BEGIN { FS = "\t"; printf "%-18s %7s %8s | %6s %6s %6s %6s %6s | %5s %5s %5s\n", "script", "ops", "ops/s", "srv", "pg", "wrk", "other", "busy", "srvK%", "pgK%", "cores" }
{
  line = $0
  if (match(line, /round trips [0-9]+,/)) { ops = substr(line, RSTART + 12, RLENGTH - 13) + 0; name = "rt" }
  else if (match(line, /Requests\/sec: +[0-9.]+/)) { split(substr(line, RSTART, RLENGTH), a, " "); ops = a[2] * ($2 - 0.1); name = "req" }
  srv = $4 + $5; pg = $6 + $7; wrk = $12 + $13; busy = $11; other = busy - srv - pg - wrk
  printf "%-18s %7d %8.1f | %6.3f %6.3f %6.3f %6.3f %6.3f | %5.0f %5.0f %5.2f\n", $1 "/" name, ops, ops / $2, srv * 10 / ops, pg * 10 / ops, wrk * 10 / ops, other * 10 / ops, busy * 10 / ops, 100 * $5 / (srv > 0 ? srv : 1), 100 * $7 / (pg > 0 ? pg : 1), busy / $2 / 100
}
