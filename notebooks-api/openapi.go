package notebooksapi

import _ "embed"

// openapiJSON is the OpenAPI 3 document served at /openapi.json; a test checks that it
// lists exactly the routes the server registers, and the statuses they answer with.
//
//go:embed openapi.json
var openapiJSON []byte
