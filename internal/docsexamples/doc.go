// Package docsexamples runs the examples of Velo's documentation as a reader would, and
// checks that they give real answers. Its test, TestDocsExamples (make docs-examples,
// part of make test), starts a fresh velo demo in a directory of its own on a free port,
// then runs every fenced command block (```sh, ```bash, ```shell, ```console) of
// README.md and of docs/*.md, in document order, in one shell session; and at the end
// compares every released answer with the exact one and checks the demo project's budget
// is not exhausted.
//
// # Conventions the documentation follows
//
// Commands run from the repository's root: each document gets a fresh view of the
// checkout (symbolic links to its files), with velo-demo/ (the demo's directory, as
// make demo makes it) and bin/velo. Like a terminal, the session keeps its variables from
// block to block and document to document (every assignment is exported, as with set -a);
// each block runs under set -euo pipefail, so a failing command, a failing pipe or an
// unset variable fails it.
//
//   - The server's address is $VELO_URL, set once with export VELO_URL=http://127.0.0.1:8080
//     (the demo's default). The runner's demo listens elsewhere: it replaces 127.0.0.1:8080
//     with its own address in every block, and nothing else.
//   - Tokens are $RESEARCHER_TOKEN, $OFFICIAL_TOKEN and $DPO_TOKEN, read from
//     velo-demo/tokens.json with sed; the notebook and velo_client.py read $VELO_TOKEN,
//     the Grafana data source $VELO_GRAFANA_TOKEN.
//   - The command line finds velo on the PATH (export PATH="$PWD/bin:$PATH").
//
// # Directives
//
// An HTML comment right before a block (blank lines and other directives may come between)
// says what the runner does with it; each directive is one comment:
//
//	<!-- docs-examples: skip (REASON) -->               not run; listed with REASON
//	<!-- docs-examples: notebook PATH (REASON) -->      PATH is executed headless with
//	                                                    nbclient instead (Jupyter opens a browser)
//	<!-- docs-examples: dashboard DIR (REASON) -->      the dashboards provisioned from DIR are
//	                                                    opened through the Grafana plugin's
//	                                                    backend instead (Grafana is not here)
//	<!-- docs-examples: demo stopped (REASON) -->       the demo is stopped, as Ctrl-C does,
//	                                                    before this block
//	<!-- docs-examples: demo running -->                the demo runs again (velo demo resumes
//	                                                    with the same directory) before this block
//
// Every document starts with the demo running. An unknown directive, or one that is not
// followed by a command block, fails the run.
//
// # What is checked
//
// Each block exits 0 within its time limit and prints no API problem
// (urn:velo:problem:...). Every query it sends is answered: a block with N query commands
// (velo query, POST /v1/queries, velo_client.py) gets N releases, fresh ones in the ledger
// with at least one row, or cached ones. At the end, every release made is compared with the
// exact answer, computed with plain DuckDB from the demo's Parquet files by the canonical SQL
// the ledger records: in each noisy column, at least two thirds of the values must be within
// 20% of the exact value and the median relative error at most 10% (see Accuracy). The
// demo's project must have budget left.
package docsexamples
