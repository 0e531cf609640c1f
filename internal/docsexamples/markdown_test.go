package docsexamples_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/internal/docsexamples"
)

func TestParse(t *testing.T) {
	const doc = "# Title\n" +
		"\n" +
		"```sh\n" +
		"make demo\n" +
		"```\n" +
		"\n" +
		"```yaml\n" +
		"data: data\n" +
		"```\n" +
		"<!-- docs-examples: skip (installs into /etc) -->\n" +
		"\n" +
		"```bash\n" +
		"sudo cp a b\n" +
		"````\n" +
		"<!-- docs-examples: demo stopped (the CLI needs the lock) -->\n" +
		"<!-- docs-examples: notebook nb/x.ipynb (Jupyter opens a browser) -->\n" +
		"~~~console\n" +
		"$ velo query --project wl \\\n" +
		"    \"SELECT 1\"\n" +
		"region  n\n" +
		"$ curl -s \"$VELO_URL/v1/queries#x\" # asks /v1/queries\n" +
		"~~~\n" +
		"<!-- docs-examples: demo running -->\n" +
		"```shell\n" +
		"# velo query in a comment is not a query\n" +
		"python3 notebooks-api/examples/velo_client.py\n" +
		"```\n"
	blocks, err := docsexamples.Parse("x.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		Line                 int
		Lang, Action, Path   string
		Reason, Demo, Script string
		Queries              int
	}
	var gots []got
	for _, b := range blocks {
		gots = append(gots, got{b.Line, b.Lang, string(b.Action), b.Path, b.Reason, string(b.Demo), b.Script(), b.Queries()})
	}
	want := []got{
		{3, "sh", "run", "", "", "", "make demo\n", 0},
		{12, "bash", "skip", "", "installs into /etc", "", "sudo cp a b\n", 0},
		{17, "console", "notebook", "nb/x.ipynb", "Jupyter opens a browser", "stopped",
			"velo query --project wl \\\n    \"SELECT 1\"\ncurl -s \"$VELO_URL/v1/queries#x\" # asks /v1/queries\n", 2},
		{24, "shell", "run", "", "", "running", "# velo query in a comment is not a query\npython3 notebooks-api/examples/velo_client.py\n", 1},
	}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unknown directive", "<!-- docs-examples: maybe -->\n```sh\nls\n```\n", "x.md:1: docs-examples directive \"maybe\": want skip"},
		{"skip without a reason", "<!-- docs-examples: skip -->\n```sh\nls\n```\n", "skip needs a reason"},
		{"two actions", "<!-- docs-examples: skip (a) -->\n<!-- docs-examples: skip (b) -->\n```sh\nls\n```\n", "already has the directive skip"},
		{"text in between", "<!-- docs-examples: skip (a) -->\nSome text.\n```sh\nls\n```\n", "x.md:1: a docs-examples directive must come right before"},
		{"before a yaml block", "<!-- docs-examples: skip (a) -->\n```yaml\na: 1\n```\n", "not ```yaml"},
		{"at the end", "```sh\nls\n```\n<!-- docs-examples: demo running -->\n", "x.md:4: a docs-examples directive must come right before"},
		{"unclosed", "```sh\nls\n", "x.md:1: the fence ``` is never closed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := docsexamples.Parse("x.md", []byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Parse: %v, want an error with %q", err, c.want)
			}
		})
	}
}
