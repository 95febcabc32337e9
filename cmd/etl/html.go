package main

import (
	"encoding/json"
	"html/template"
	"io"
	"sort"
	"strconv"

	"github.com/northwind-data/etl/internal/partner"
)

// The HTML report is one self-contained page (inline CSS and SVG, no
// scripts, no external assets) so it can be attached to a sign-off.
var reportTmpl = template.Must(template.New("r").Funcs(template.FuncMap{
	"pct": func(n, total int64) string {
		if total == 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(n)*100/float64(total), 'f', 1, 64)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>etl run report {{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f3f3f3} td.l,th.l{text-align:left}
.bar{display:flex;height:18px;width:480px;border:1px solid #999} .bar div{height:100%}
.dry{border:2px solid #f9a825;background:#fff8e1;padding:.5em 1em}
.ok{background:#2e7d32}.notsent{background:#bdbdbd}.rejected{background:#f9a825}.failed{background:#c62828}.uncertain{background:#6a1b9a}.other{background:#90a4ae}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
</style></head><body>
<h1>etl run report {{.Title}}</h1>
{{if .Dry}}<p class="dry" id="dry-run">DRY RUN: nothing was sent. The rejects below are the dry run's; there are no partner outcomes.</p>{{end}}
<table><tr><th>run</th><th class="l">group</th><th>shard</th><th class="l">status</th><th class="l">started</th><th class="l">finished</th><th class="l">source</th></tr>
{{range .Runs}}<tr><td>{{.ID}}</td><td class="l">{{.Group}}</td><td>{{.ShardIndex}}/{{.ShardCount}}</td><td class="l" id="status-{{.ID}}">{{.Status}}{{if eq .CountsFrom "ledger"}} (no final counts: counted from the ledger){{end}}</td><td class="l">{{.Started.Format "2006-01-02 15:04:05"}}</td><td class="l">{{if .Finished}}{{.Finished.Format "2006-01-02 15:04:05"}}{{else}}running{{end}}</td><td class="l">{{.Source}}</td></tr>{{end}}
</table>
<h2>Outcomes per partner</h2>
<p class="legend"><span class="ok"></span>ok<span class="rejected"></span>rejected<span class="failed"></span>failed<span class="uncertain"></span>uncertain<span class="notsent"></span>not sent: no update API</p>
<table id="outcomes"><tr><th class="l">partner</th><th class="l">chart</th><th>ok</th><th>rejected</th><th>failed</th><th>uncertain</th><th>not sent: no update API</th><th>total</th></tr>
{{range .Partners}}<tr class="partner" data-partner="{{.Name}}"><td class="l">{{.Name}}</td><td class="l"><div class="bar" role="img" aria-label="{{.Name}} outcomes">
<div class="ok" style="width:{{pct .OK .Total}}%"></div><div class="rejected" style="width:{{pct .Rejected .Total}}%"></div><div class="failed" style="width:{{pct .Failed .Total}}%"></div><div class="uncertain" style="width:{{pct .Uncertain .Total}}%"></div><div class="notsent" style="width:{{pct .NotSent .Total}}%"></div></div></td>
<td class="n-ok">{{.OK}}</td><td>{{.Rejected}}</td><td>{{.Failed}}</td><td>{{.Uncertain}}</td><td class="n-notsent">{{.NotSent}}</td><td>{{.Total}}</td></tr>{{end}}
</table>
<h2>Latencies</h2>
<table id="latencies"><tr><th class="l">partner</th><th class="l">operation</th><th>rows</th><th>avg ms</th><th>p95 ms</th></tr>
{{range .Latencies}}<tr data-partner="{{.Provider}}" data-operation="{{.Operation}}"><td class="l">{{.Provider}}</td><td class="l">{{.Operation}}</td><td>{{.Count}}</td><td class="avg">{{printf "%.1f" .AvgMS}}</td><td class="p95">{{printf "%.1f" .P95MS}}</td></tr>{{else}}<tr><td class="l" colspan="5">no calls</td></tr>{{end}}
</table>
<h2>Top error reasons</h2>
<table id="errors"><tr><th class="l">partner</th><th class="l">code</th><th>count</th><th class="l">example</th></tr>
{{range .Errors}}<tr><td class="l">{{.Provider}}</td><td class="l">{{.Code}}</td><td>{{.Count}}</td><td class="l">{{.Message}}</td></tr>{{else}}<tr><td class="l" colspan="4">none</td></tr>{{end}}
</table>
<h2>Rejected input rows</h2>
<table id="rejects"><tr><th class="l">partner</th><th class="l">reason</th><th>count</th><th class="l">example</th></tr>
{{range .Rejects}}<tr><td class="l">{{if .Provider}}{{.Provider}}{{else}}(all){{end}}</td><td class="l">{{.Code}}</td><td>{{.Count}}</td><td class="l">{{.Message}}</td></tr>{{else}}<tr><td class="l" colspan="4">none</td></tr>{{end}}
</table>
<p>Card data never appears in this report: cards are identified by entity key only.</p>
</body></html>
`))

type partnerBar struct {
	Name                                            string
	OK, Rejected, Failed, Uncertain, NotSent, Total int64
}

func writeHTML(w io.Writer, rep *Report) error {
	bars := map[string]*partnerBar{}
	for _, o := range rep.Outcomes {
		if o.Operation == "intent" {
			continue
		}
		b := bars[o.Provider]
		if b == nil {
			b = &partnerBar{Name: o.Provider}
			bars[o.Provider] = b
		}
		switch o.Outcome {
		case "ok":
			b.OK += o.Count
		case "rejected":
			b.Rejected += o.Count
		case "failed":
			b.Failed += o.Count
		case "uncertain":
			b.Uncertain += o.Count
		case partner.RequestNotSentNoUpdateAPI:
			b.NotSent += o.Count
		}
		b.Total += o.Count
	}
	var ps []*partnerBar
	for _, b := range bars {
		ps = append(ps, b)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	title := ""
	if len(rep.Runs) == 1 {
		b, _ := json.Marshal(rep.Runs[0].ID)
		title = "#" + string(b)
	} else if len(rep.Runs) > 1 {
		title = rep.Runs[0].Group
	}
	dry := len(rep.Runs) > 0
	for _, r := range rep.Runs {
		dry = dry && r.DryRun
	}
	return reportTmpl.Execute(w, map[string]any{"Title": title, "Runs": rep.Runs, "Partners": ps, "Errors": rep.Errors, "Rejects": rep.Rejects,
		"Latencies": rep.Latencies, "Dry": dry})
}
