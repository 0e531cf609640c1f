// Package notebooksapi is Velo's HTTP API for researchers, dashboards and DPOs
// (docs/api.md), and the DPO's ledger page.
//
// Invariants:
//
//   - Every answer about data comes from query.Engine, so every number that leaves has been
//     noised, charged and recorded; the server has no other path to the data.
//   - Every route but /healthz, /metrics, /openapi.json and the login page needs a bearer
//     token (or, for the HTML ledger page only, a session cookie made from one), and every
//     request, accepted or refused, is logged with its user, role and project — never the
//     token, the Authorization header, a session cookie or a query string.
//   - Tokens are stored only as SHA-256 hashes and compared in constant time.
//   - Errors are application/problem+json with a stable code and public text only: the
//     engine's *query.Error messages are public by contract, anything else becomes a
//     generic message (a DuckDB error can quote data).
package notebooksapi
