package web_test

import (
	"net/http"
	"os"

	"github.com/attestlog/attestlog/log/logserver"
	"github.com/attestlog/attestlog/web"
)

// The log server (or 'attestlog up') mounts the explorer beside the log's
// API on one mux, and sends people who open the root to it.
func ExampleNewExplorer() {
	var lg *logserver.Log                        // from logserver.Open
	wp, err := os.ReadFile("witness-policy.txt") // the log's Config.WitnessPolicy
	if err != nil {
		panic(err)
	}
	ex, err := web.NewExplorer(lg, web.WithWitnessPolicy(wp), web.WithDashboardURL(web.DefaultDashboardPrefix))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ex.Prefix(), ex.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(ex.Prefix(), http.StatusFound))
	mux.Handle("/", lg.Handler())
}

// The auditor implements web.AuditSource and mounts the dashboard beside
// its API.
func ExampleNewDashboard() {
	var src web.AuditSource // the auditor
	d, err := web.NewDashboard(src, web.WithExplorerURL("https://log.example.com/ui/"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle(d.Prefix(), d.Handler())
}
