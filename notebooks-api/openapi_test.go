package notebooksapi

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOpenAPICoversRoutes checks that openapi.json documents exactly the routes the
// server registers: each route is in the document, and each operation is a route. (The
// end-to-end tests check, from the server's own metrics, that every status a route
// answered with is documented for it.)
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	s := &Server{}
	var routes []string
	for _, r := range s.routes() {
		routes = append(routes, r.pattern)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("routes (-code +openapi.json):\n%s", diff)
	}
	// Every $ref resolves.
	var full map[string]any
	if err := json.Unmarshal(openapiJSON, &full); err != nil {
		t.Fatal(err)
	}
	schemas := full["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if _, ok := schemas[name]; !ok {
					t.Errorf("dangling $ref %s (schemas: %v)", ref, slices.Sorted(maps.Keys(schemas)))
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(full)
}

// TestOpenAPISecurity checks that openapi.json says which routes need credentials, as the
// route table has them: every operation states its `security`; a public route (s.public)
// has an empty list, or offers `{}` (no credentials) beside a token it may read, as
// /metrics does; every other route requires a bearer token (the ledger page also takes
// its session cookie). The document also states its license.
func TestOpenAPISecurity(t *testing.T) {
	var doc struct {
		Info struct {
			License struct {
				Name string `json:"name"`
			} `json:"license"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			Security *[]map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.License.Name == "" {
		t.Error("openapi.json has no info.license")
	}
	s := &Server{}
	var public int
	for _, r := range s.routes() {
		method, path, _ := strings.Cut(r.pattern, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			continue // TestOpenAPICoversRoutes reports it
		}
		if op.Security == nil {
			t.Errorf("%s: openapi.json states no security (public routes need security: [])", r.pattern)
			continue
		}
		anonymous := len(*op.Security) == 0
		bearer := false
		for _, req := range *op.Security {
			if len(req) == 0 {
				anonymous = true
			}
			if _, ok := req["bearerAuth"]; ok {
				bearer = true
			}
		}
		if _, ok := r.handler.(publicHandler); ok {
			public++
			if !anonymous {
				t.Errorf("%s needs no credentials, but openapi.json's security %v requires some", r.pattern, *op.Security)
			}
		} else if anonymous || !bearer {
			t.Errorf("%s needs a bearer token, but openapi.json's security is %v", r.pattern, *op.Security)
		}
	}
	if public < 5 {
		t.Errorf("%d public routes: the public handlers are not recognised", public)
	}
}
