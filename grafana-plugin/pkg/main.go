// Command gpx_velo is the backend of Velo's Grafana data source. Grafana starts it as a
// plugin process (hashicorp go-plugin over gRPC); it is not run by hand.
package main

import (
	"os"
	_ "time/tzdata" // the data source's time zone (Europe/Rome) on hosts without zoneinfo

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/velo-fse/velo/grafana-plugin/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("velo data source stopped", "error", err.Error())
		os.Exit(1)
	}
}
