package notebooksapi

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// Italian and English. Every string a DPO or an official reads — the pages, and the title
// and detail of a problem — comes from here, in the language the browser or client asks
// for with Accept-Language: Italian when it prefers Italian, English otherwise.
//
// Two tables, one place:
//   - pageText: the pages' strings, by key ({{T "key"}} in templates/, tr(lang, "key") in
//     Go), each in both languages.
//   - problemIT: the Italian of each problem detail, keyed by its English text: the format
//     given to problem() (or a Problem's fixed Detail). A detail with no Italian entry is
//     sent in English; the package's tests hold that every detail the code writes has one.
//
// Messages from the query engine (SQL rejections, with their positions) are in English:
// they quote SQL, and docs/governance.md says so.

// lang is a language Velo speaks.
type lang int

const (
	langEN lang = iota
	langIT
)

var langMatcher = language.NewMatcher([]language.Tag{language.English, language.Italian})

// langOf picks Italian when the request's Accept-Language prefers it to English (or asks
// for Italian and no English), English otherwise; a ?lang=it or ?lang=en query parameter
// on a page overrides it.
func langOf(r *http.Request) lang {
	switch r.URL.Query().Get("lang") {
	case "it":
		return langIT
	case "en":
		return langEN
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return langEN
	}
	if _, i, conf := langMatcher.Match(tags...); i == 1 && conf != language.No {
		return langIT
	}
	return langEN
}

// Code is the language's BCP 47 tag, for <html lang> and Content-Language.
func (l lang) Code() string {
	if l == langIT {
		return "it"
	}
	return "en"
}

// tr returns the page string key in l, formatted with args.
func tr(l lang, key string, args ...any) string {
	m, ok := pageText[key]
	if !ok {
		return "[" + key + "]"
	}
	f := m[0]
	if l == langIT {
		f = m[1]
	}
	if len(args) == 0 {
		return f
	}
	return fmt.Sprintf(f, args...)
}

// trDetail returns a problem's detail in l: its format (or fixed text) translated when l
// is Italian and the table has it.
func trDetail(l lang, p *Problem) string {
	if l != langIT {
		return p.Detail
	}
	key := p.format
	if key == "" {
		key = p.Detail
	}
	it, ok := problemIT[key]
	if !ok {
		return p.Detail
	}
	if p.format == "" {
		return it
	}
	return fmt.Sprintf(it, p.args...)
}

// statusTitle is a problem's title: the status's name in l.
func statusTitle(l lang, status int) string {
	if l == langIT {
		if t, ok := statusIT[status]; ok {
			return t
		}
	}
	return http.StatusText(status)
}

var statusIT = map[int]string{
	http.StatusBadRequest:            "Richiesta non valida",
	http.StatusUnauthorized:          "Non autenticato",
	http.StatusForbidden:             "Accesso negato",
	http.StatusNotFound:              "Non trovato",
	http.StatusMethodNotAllowed:      "Metodo non consentito",
	http.StatusNotAcceptable:         "Formato non disponibile",
	http.StatusConflict:              "Conflitto",
	http.StatusRequestEntityTooLarge: "Richiesta troppo grande",
	http.StatusUnsupportedMediaType:  "Tipo di contenuto non supportato",
	http.StatusTooManyRequests:       "Troppe richieste",
	http.StatusInternalServerError:   "Errore interno",
	http.StatusServiceUnavailable:    "Servizio non disponibile",
}

// problemIT is the Italian of each problem detail, keyed by the English format.
var problemIT = map[string]string{
	// Identity from the organisation and the access log.
	"this server keeps no access log":                     "questo server non tiene un registro degli accessi",
	"format %q: want csv or ndjson":                       "formato %q: usa csv o ndjson",
	"%s %q: want a date (2026-03-01) or an RFC 3339 time": "%s %q: serve una data (2026-03-01) o un istante RFC 3339",
	"the organisation's identity provider cannot be reached to check this token; retry later (Velo's own tokens still work)": "il fornitore di identità dell'organizzazione non è raggiungibile per verificare questo token; riprova più tardi (i token di Velo funzionano comunque)",
	"the token's claims are not a JSON object":                                                                                                                    "le attestazioni (claim) del token non sono un oggetto JSON",
	"the token's user name (claim %s) is not one Velo can record: it must match %s":                                                                               "il nome utente del token (claim %s) non è registrabile da Velo: deve corrispondere a %s",
	"the token gives no Velo role: its %s claim holds none of the roles Velo maps (docs/identity.md); ask your administrator":                                     "il token non dà alcun ruolo in Velo: il suo claim %s non contiene nessuno dei ruoli che Velo riconosce (docs/identity.md); rivolgiti al tuo amministratore",
	"the token gives more than one Velo role (%s); a user acts in one role: ask your administrator to keep one":                                                   "il token dà più di un ruolo in Velo (%s); un utente agisce in un solo ruolo: chiedi al tuo amministratore di lasciarne uno",
	"the token names project %q (claim %s), which Velo does not have; ask your administrator or the DPO":                                                          "il token nomina il progetto %q (claim %s), che Velo non ha; rivolgiti al tuo amministratore o al DPO",
	"this server has no organisation login (velo.yaml's oidc section with redirect_url)":                                                                          "questo server non ha l'accesso con l'account dell'organizzazione (sezione oidc di velo.yaml con redirect_url)",
	"the identity provider sent no ID token":                                                                                                                      "il fornitore di identità non ha inviato alcun ID token",
	"the ID token's nonce is not this login's":                                                                                                                    "il nonce dell'ID token non è quello di questo accesso",
	"the access token and the ID token name different subjects":                                                                                                   "l'access token e l'ID token indicano soggetti diversi",
	"the ID token's claims are not a JSON object":                                                                                                                 "le attestazioni (claim) dell'ID token non sono un oggetto JSON",
	"login codes are for Velo's own tokens: with the organisation's account, log in on the page itself (GET /login, \"Log in with your organisation's account\")": "i codici di accesso sono per i token di Velo: con l'account dell'organizzazione, accedi dalla pagina stessa (GET /login, \"Accedi con l'account della tua organizzazione\")",
	// Authentication and roles.
	"send a token: the authorization header, Bearer <token>":          "invia un token: l'intestazione Authorization, Bearer <token>",
	"the token is not valid: unknown, or revoked (ask for a new one)": "il token non è valido: sconosciuto o revocato (chiedine uno nuovo)",
	"send a token: Authorization: Bearer <token>":                     "invia un token: Authorization: Bearer <token>",
	"send a token":                       "invia un token",
	"you are not a member of project %q": "non sei membro del progetto %q",
	"project %s has no release %q":       "il progetto %s non ha un rilascio %q",
	"release %s is available as %s only: Parquet is for the rows of synthetic releases":  "il rilascio %s è disponibile solo come %s: Parquet è per le righe dei rilasci sintetici",
	"the rows of release %s are not kept on this server (its record is available as %s)": "le righe del rilascio %s non sono conservate su questo server (il suo record è disponibile come %s)",
	"the %s role cannot send queries":                           "il ruolo %s non può inviare interrogazioni",
	"the %s role cannot request data releases":                  "il ruolo %s non può chiedere rilasci di dati",
	"the admin role manages users and tokens and reads no data": "il ruolo admin gestisce utenti e token e non legge dati",
	"only the dpo role may do this":                             "solo il ruolo dpo può farlo",
	"only a researcher or an official may request a project":    "solo un ricercatore o un funzionario può chiedere un progetto",
	"too many login codes outstanding; retry in a minute":       "troppi codici di accesso in sospeso; riprova tra un minuto",
	"too many failed authentications from your address: requests from it are refused for %d seconds (nothing was charged)": "troppe autenticazioni fallite dal tuo indirizzo: le sue richieste sono rifiutate per %d secondi (nulla è stato addebitato)",

	// Routes and request bodies.
	"a release is available as %s or %s":      "un rilascio è disponibile come %s o %s",
	"synthetic data is available as %s or %s": "i dati sintetici sono disponibili come %s o %s",
	"no project %q":                                      "nessun progetto %q",
	"%s: want a whole number":                            "%s: serve un numero intero",
	"%s: want a whole number from 1 to %d":               "%s: serve un numero intero da 1 a %d",
	"internal error; the operator's log has the details": "errore interno; il log del gestore ha i dettagli",
	"%s is not allowed here; allowed: %s":                "%s non è consentito qui; consentiti: %s",
	"no such route; GET /openapi.json lists them":        "percorso inesistente; GET /openapi.json li elenca",
	"send the request body as application/json":          "invia il corpo della richiesta come application/json",
	"%s": "%s",
	"the request body is larger than %d bytes":                         "il corpo della richiesta supera i %d byte",
	"the body is not valid JSON (at byte %d)":                          "il corpo non è JSON valido (al byte %d)",
	"unknown field %q":                                                 "campo sconosciuto %q",
	"the request body is empty: send a JSON object":                    "il corpo della richiesta è vuoto: invia un oggetto JSON",
	"the body is not a valid JSON object":                              "il corpo non è un oggetto JSON valido",
	"this server's engine cannot release marginals or synthetic data":  "il motore di questo server non può rilasciare marginali né dati sintetici",
	"the statement is empty":                                           "l'istruzione è vuota",
	"sql is required":                                                  "sql è obbligatorio",
	"project is required":                                              "project è obbligatorio",
	"table is required":                                                "table è obbligatorio",
	"epsilon: give epsilon, delta or both":                             "epsilon: indica epsilon, delta o entrambi",
	"%s must be \"data\" or \"dummy\", got %q":                         "%s deve essere \"data\" o \"dummy\", ricevuto %q",
	"you belong to %d projects: name one in the x-velo-project header": "appartieni a %d progetti: indicane uno nell'intestazione x-velo-project",
	"the %s header must be a number, got %q":                           "l'intestazione %s deve essere un numero, ricevuto %q",
	"marginals is required: a list of attribute sets, e.g. [[\"region\"], [\"priority\", \"wait_days\"]]": "marginals è obbligatorio: un elenco di insiemi di attributi, ad es. [[\"region\"], [\"priority\", \"wait_days\"]]",

	// The ledger's refusals (problem.go).
	"the server is already running its limit of %d queries; retry shortly (nothing was charged)":                   "il server esegue già il suo limite di %d interrogazioni; riprova tra poco (nulla è stato addebitato)",
	"the project's privacy budget does not cover this query; a DPO can grant more (POST /v1/projects/{id}/grants)": "il budget di privacy del progetto non copre questa interrogazione; un DPO può concederne altro (POST /v1/projects/{id}/grants)",
	"the project's privacy budget does not cover this query: it asks for epsilon %s and delta %s; project %s has epsilon %s and delta %s left (of epsilon %s and delta %s; epsilon %s and delta %s spent). A DPO can grant more: POST /v1/projects/%s/grants, or velo project grant --state STATE --id %s --epsilon E while no server holds the ledger. A query asked before is answered from the release cache at no cost.": "il budget di privacy del progetto non copre questa interrogazione: chiede epsilon %s e delta %s; al progetto %s restano epsilon %s e delta %s (su epsilon %s e delta %s; spesi epsilon %s e delta %s). Un DPO può concederne altro: POST /v1/projects/%s/grants, oppure velo project grant --state STATE --id %s --epsilon E quando nessun server tiene il registro. Un'interrogazione già posta riceve gratis la risposta dalla cache dei rilasci.",
	"the query asks for more epsilon or delta than the project allows per query":                                                                                                  "l'interrogazione chiede più epsilon o delta di quanto il progetto consenta per interrogazione",
	"project %s expired on %s: it can no longer query, dry runs and releases already cached included (GET /v1/projects/{id} shows its expiry); the DPO may approve a new project": "il progetto %s è scaduto il %s: non può più interrogare, prove a secco e rilasci già in cache compresi (GET /v1/projects/{id} mostra la scadenza); il DPO può approvare un nuovo progetto",
	"project %s is suspended since %s by the DPO, who gave this reason: %s. Nothing is charged or released until the DPO resumes it":                                              "il progetto %s è sospeso dal %s dal DPO, con questa motivazione: %s. Nulla è addebitato né rilasciato finché il DPO non lo riattiva",
	"project %s is not valid yet: its data permit is valid from %s; nothing is charged or released before then":                                                                   "il progetto %s non è ancora valido: il suo permesso di accesso ai dati vale dal %s; prima di allora nulla è addebitato né rilasciato",
	"a project with this ID already exists":                                     "esiste già un progetto con questo ID",
	"a request for this project ID is pending: the DPO decides it first":        "una richiesta per questo ID di progetto è in attesa: prima decide il DPO",
	"no pending request for this project (GET /v1/project-requests lists them)": "nessuna richiesta in attesa per questo progetto (GET /v1/project-requests le elenca)",
	"no such project": "progetto inesistente",
	"%s: %s":          "%s: %s",
	"the privacy ledger cannot record entries (its storage failed), so nothing can be charged and no result was released; the operator must fix the storage and restart the server": "il registro di privacy non può registrare voci (la sua memoria è guasta), quindi nulla può essere addebitato e nessun risultato è stato rilasciato; il gestore deve riparare la memoria e riavviare il server",
	"no checkpoint has been signed yet: one is signed every 64 entries and when the server stops":                                                                                   "nessun checkpoint è ancora firmato: se ne firma uno ogni 64 voci e all'arresto del server",
	"the form must be sent from this server's own page": "il modulo va inviato dalla pagina di questo server",
	"the form could not be read":                        "non è stato possibile leggere il modulo",
	"%s: want a number, got %q":                         "%s: serve un numero, ricevuto %q",
	"%s: want a date as YYYY-MM-DD, got %q":             "%s: serve una data come AAAA-MM-GG, ricevuto %q",
	"allow: %s":                                         "allow: %s",
	"unknown action %q":                                 "azione sconosciuta %q",
	"format: want csv, ndjson or checkpoint, got %q":    "format: serve csv, ndjson o checkpoint, ricevuto %q",
	"project %s is not suspended":                       "il progetto %s non è sospeso",
	"project %s is already suspended":                   "il progetto %s è già sospeso",
}

// fieldIT is the Italian of the ledger's field problems (ledger.FieldError), by their
// English text; a field problem not here is sent in English after the Italian field name.
var fieldIT = map[string]string{
	"required": "obbligatorio",
	"a request names the data permit it is made under":                  "una richiesta indica il permesso di accesso ai dati in base al quale è fatta",
	"required with a permit, as text of at most 256 bytes":              "obbligatorio con un permesso, come testo di al più 256 byte",
	"a rejection gives its reason":                                      "un rifiuto indica la sua motivazione",
	"a suspension gives its reason":                                     "una sospensione indica la sua motivazione",
	"an approval keeps the request's permit (ID, issuing body, holder)": "un'approvazione mantiene il permesso della richiesta (ID, ente emittente, titolare)",
	"an approval keeps the request's purpose":                           "un'approvazione mantiene la finalità della richiesta",
	"an approval keeps the request's legal basis":                       "un'approvazione mantiene la base giuridica della richiesta",
	"at least one table is required":                                    "serve almeno una tabella",
	"must be > 0":                                                       "deve essere > 0",
	"a grant adds epsilon, delta or both":                               "una concessione aggiunge epsilon, delta o entrambi",
}

// trField is a ledger field problem's detail in l.
func trField(l lang, field, problem string) string {
	if l == langIT {
		if it, ok := fieldIT[problem]; ok {
			return field + ": " + it
		}
	}
	return field + ": " + problem
}

// statusKey is the page text of a request's status.
func statusKey(s string) string { return "request." + strings.ToLower(s) }

// pageText is the pages' strings: key -> {English, Italian}.
var pageText = map[string][2]string{
	"page.title":        {"Velo privacy ledger", "Registro di privacy di Velo"},
	"page.signed_in":    {"Signed in as %s (dpo)", "Accesso come %s (dpo)"},
	"page.generated":    {"generated", "generata il"},
	"page.only_project": {"project %s only", "solo il progetto %s"},
	"page.all_projects": {"all projects", "tutti i progetti"},
	"page.logout":       {"Log out", "Esci"},

	"alerts.title":   {"Budget alerts", "Avvisi sul budget"},
	"alerts.none":    {"No project has spent %s of its budget.", "Nessun progetto ha speso il %s del suo budget."},
	"alerts.epsilon": {"Project %s has spent %s of its epsilon budget (%s of %s; the alert is at %s).", "Il progetto %s ha speso il %s del suo budget di epsilon (%s su %s; l'avviso scatta al %s)."},
	"alerts.delta":   {"Project %s has spent %s of its delta budget (%s of %s; the alert is at %s).", "Il progetto %s ha speso il %s del suo budget di delta (%s su %s; l'avviso scatta al %s)."},

	"filters.title":     {"Filters and export", "Filtri ed esportazione"},
	"filters.project":   {"Project", "Progetto"},
	"filters.user":      {"User", "Utente"},
	"filters.from":      {"From", "Dal"},
	"filters.to":        {"To", "Al"},
	"filters.apply":     {"Apply", "Applica"},
	"filters.clear":     {"Clear", "Azzera"},
	"export.title":      {"Export the ledger", "Esporta il registro"},
	"export.checkpoint": {"latest signed checkpoint", "ultimo checkpoint firmato"},
	"export.note": {"The exports take the filters above; keep the signed checkpoint and its verifier key outside Velo: velo ledger verify with them detects a rewritten history.",
		"Le esportazioni applicano i filtri qui sopra; conserva il checkpoint firmato e la sua chiave di verifica fuori da Velo: velo ledger verify con essi rileva una storia riscritta."},

	"verify.title": {"Chain verification", "Verifica della catena"},
	"verify.unread": {"Not verified: the ledger could not be read for verification; the operator's log has the details",
		"Non verificato: non è stato possibile leggere il registro per verificarlo; il log del gestore ha i dettagli"},
	"verify.ok": {"Chain verified: %d entries, hash chain intact, budgets re-summed, %d signed checkpoints match (the last covers %d entries).",
		"Catena verificata: %d voci, catena di hash intatta, budget ricalcolati, %d checkpoint firmati corrispondono (l'ultimo copre %d voci)."},
	"verify.head":       {"Head", "Testa"},
	"verify.recoveries": {"%d torn tails were cut on recovery (see the recovery entries)", "%d code interrotte sono state tagliate al ripristino (vedi le voci recovery)"},
	"verify.failed":     {"Verification FAILED", "Verifica NON RIUSCITA"},
	"verify.entry":      {"entry %d", "voce %d"},

	"total.title": {"Spent across all projects", "Speso su tutti i progetti"},
	"total.text": {"Projects over the same people compose: in total, epsilon %s and delta %s have been spent.",
		"I progetti sulle stesse persone si compongono: in totale sono stati spesi epsilon %s e delta %s."},

	"requests.title":       {"Project requests", "Richieste di progetto"},
	"requests.none":        {"No request is waiting for a decision.", "Nessuna richiesta attende una decisione."},
	"request.pending":      {"pending", "in attesa"},
	"request.approved":     {"approved", "approvata"},
	"request.rejected":     {"rejected", "respinta"},
	"request.by":           {"Requested by", "Richiesta da"},
	"approve.allow":        {"May read (table; table:column,column)", "Può leggere (tabella; tabella:colonna,colonna)"},
	"approve.expires":      {"Expires after", "Scade dopo il"},
	"approve.button":       {"Approve", "Approva"},
	"reject.button":        {"Reject", "Respingi"},
	"form.reason":          {"Reason", "Motivazione"},
	"form.reason_optional": {"Reason (optional)", "Motivazione (facoltativa)"},

	"permit.id":           {"Data permit", "Permesso di accesso ai dati"},
	"permit.issuing_body": {"Issued by", "Rilasciato da"},
	"permit.holder":       {"Holder", "Titolare"},

	"projects.title":          {"Projects", "Progetti"},
	"projects.none":           {"No projects yet.", "Ancora nessun progetto."},
	"state.active":            {"active", "attivo"},
	"state.suspended":         {"suspended", "sospeso"},
	"state.not_yet_valid":     {"not yet valid", "non ancora valido"},
	"state.expired":           {"expired", "scaduto"},
	"project.suspended_since": {"Suspended since %s: %s", "Sospeso dal %s: %s"},
	"project.purpose":         {"Purpose", "Finalità"},
	"project.legal_basis":     {"Legal basis", "Base giuridica"},
	"project.approver":        {"Approver", "Approvato da"},
	"project.not_recorded":    {"not recorded", "non registrato"},
	"project.may_read":        {"May read", "Può leggere"},
	"project.budget":          {"Budget", "Budget"},
	"project.created":         {"Created", "Creato"},
	"project.validity":        {"Valid", "Validità"},
	"project.per_query":       {"Per query", "Per interrogazione"},
	"project.per_query_text":  {"default epsilon %s, delta %s; cap epsilon %s, delta %s", "epsilon predefinito %s, delta %s; massimo epsilon %s, delta %s"},
	"project.no_cap":          {"none", "nessuno"},
	"project.queries":         {"Queries charged", "Interrogazioni addebitate"},
	"allow.all_columns":       {"all columns", "tutte le colonne"},
	"date.never":              {"never", "mai"},
	"validity.from_start":     {"from the approval", "dall'approvazione"},
	"validity.no_end":         {"no expiry", "senza scadenza"},
	"budget.used":             {"Budget used", "Budget usato"},
	"budget.total":            {"Total", "Totale"},
	"budget.spent":            {"Spent", "Speso"},
	"budget.left":             {"Left", "Residuo"},
	"budget.pure":             {"pure epsilon-DP only", "solo epsilon-DP puro"},
	"chart.title":             {"Epsilon of project %s over time: %s spent of %s", "Epsilon del progetto %s nel tempo: spesi %s su %s"},
	"chart.total":             {"budget (creation and grants)", "budget (creazione e concessioni)"},
	"chart.spent":             {"spent (charges less refunds)", "speso (addebiti meno rimborsi)"},
	"chart.caption":           {"Epsilon over time; the dashed line is the alert at %s of the budget.", "Epsilon nel tempo; la linea tratteggiata è l'avviso al %s del budget."},
	"suspend.button":          {"Suspend", "Sospendi"},
	"resume.button":           {"Resume", "Riattiva"},
	"grant.button":            {"Grant budget", "Concedi budget"},

	"done.approve": {"Request %s approved: the project exists.", "Richiesta %s approvata: il progetto esiste."},
	"done.reject":  {"Request %s rejected.", "Richiesta %s respinta."},
	"done.suspend": {"Project %s suspended.", "Progetto %s sospeso."},
	"done.resume":  {"Project %s resumed.", "Progetto %s riattivato."},
	"done.grant":   {"Budget granted to project %s.", "Budget concesso al progetto %s."},

	"charges.title":    {"Charges", "Addebiti"},
	"charges.latest":   {"The latest %d of %d charges, newest first.", "Gli ultimi %d di %d addebiti, dal più recente."},
	"charges.count":    {"%d charges, newest first.", "%d addebiti, dal più recente."},
	"charges.note":     {"Each was charged, durably, before its query read any data.", "Ciascuno è stato addebitato, in modo durevole, prima che la sua interrogazione leggesse dati."},
	"charges.none":     {"No charges yet.", "Ancora nessun addebito."},
	"col.time":         {"Time (UTC)", "Ora (UTC)"},
	"col.user":         {"User", "Utente"},
	"col.project":      {"Project", "Progetto"},
	"col.sql":          {"SQL (as sent; canonical form below)", "SQL (come inviato; forma canonica sotto)"},
	"col.canonical":    {"canonical form", "forma canonica"},
	"col.outcome":      {"Outcome", "Esito"},
	"col.twin":         {"Twin", "Gemello"},
	"col.by":           {"By", "Da"},
	"col.reason":       {"Reason", "Motivazione"},
	"col.status":       {"Status", "Stato"},
	"col.step":         {"Step", "Passo"},
	"outcome.released": {"released", "rilasciato"},
	"outcome.refunded": {"refunded: %s", "rimborsato: %s"},
	"outcome.running":  {"charged, no release (running, or failed while running)", "addebitato, nessun rilascio (in corso, o fallito durante l'esecuzione)"},

	"dummies.title":  {"Dummy runs", "Esecuzioni sui dati fittizi"},
	"dummies.latest": {"The latest %d of %d dummy runs, newest first:", "Le ultime %d di %d esecuzioni sui dati fittizi, dalla più recente:"},
	"dummies.count":  {"%d dummy runs, newest first:", "%d esecuzioni sui dati fittizi, dalla più recente:"},
	"dummies.note": {"queries answered on the dummy twin, made-up people generated from the catalog alone. They read no data and cost nothing.",
		"interrogazioni a cui ha risposto il gemello fittizio, persone inventate generate dal solo catalogo. Non leggono dati e non costano nulla."},
	"dummies.none": {"No dummy runs yet.", "Ancora nessuna esecuzione sui dati fittizi."},

	"grants.title":  {"Budget grants", "Concessioni di budget"},
	"grants.none":   {"No grants beyond the budgets given at creation.", "Nessuna concessione oltre ai budget dati alla creazione."},
	"history.title": {"Permits and decisions", "Permessi e decisioni"},
	"history.none":  {"No permit step yet.", "Ancora nessun passo."},
	"kind.project":  {"project created", "progetto creato"},
	"kind.request":  {"requested", "richiesto"},
	"kind.approve":  {"approved", "approvato"},
	"kind.reject":   {"rejected", "respinto"},
	"kind.suspend":  {"suspended", "sospeso"},
	"kind.resume":   {"resumed", "riattivato"},

	"login.title":           {"Velo: log in", "Velo: accesso"},
	"login.token":           {"DPO token", "Token del DPO"},
	"login.button":          {"Log in", "Accedi"},
	"continue.login":        {"Logged in as %s.", "Accesso eseguito come %s."},
	"continue.login.title":  {"logged in", "accesso eseguito"},
	"continue.logout":       {"Logged out of Velo; now out of your organisation's account.", "Uscito da Velo; ora anche dall'account della tua organizzazione."},
	"continue.logout.title": {"logged out", "uscita"},
	"continue.link":         {"Continue", "Continua"},
	"login.oidc":            {"Log in with your organisation's account", "Accedi con l'account della tua organizzazione"},
	"login.note": {"The token is checked once and never stored in the browser: you get a session cookie for this page only, which ends when you log out, after a few hours, or when the token is revoked.",
		"Il token è controllato una volta e mai conservato nel browser: ricevi un cookie di sessione valido solo per questa pagina, che termina quando esci, dopo alcune ore o quando il token è revocato."},
	"message.back": {"Back to the ledger", "Torna al registro"},
}

// loginIT is the Italian of the login page's messages, by their English text.
var loginIT = map[string]string{
	// The organisation's login.
	"The organisation's identity provider cannot be reached; try again later, or log in with a token.": "Il fornitore di identità dell'organizzazione non è raggiungibile; riprova più tardi, o accedi con un token.",
	"Too many logins in progress; try again in a few minutes.":                                         "Troppi accessi in corso; riprova tra qualche minuto.",
	"That login did not start in this browser, or took more than ten minutes. Log in again.":           "Questo accesso non è partito da questo browser, o ha richiesto più di dieci minuti. Accedi di nuovo.",
	"The organisation's identity provider cannot be reached; try again later.":                         "Il fornitore di identità dell'organizzazione non è raggiungibile; riprova più tardi.",
	"The identity provider did not accept the login's code; log in again.":                             "Il fornitore di identità non ha accettato il codice di accesso; accedi di nuovo.",
	"That login link is not valid: it was used already or has expired. Log in with your token.":        "Questo link di accesso non è valido: è già stato usato o è scaduto. Accedi con il tuo token.",
	"The login form must be sent from this server's own page.":                                         "Il modulo di accesso va inviato dalla pagina di questo server.",
	"The form could not be read.":                               "Non è stato possibile leggere il modulo.",
	"That token is not valid.":                                  "Questo token non è valido.",
	"The ledger page is for the DPO.":                           "La pagina del registro è per il DPO.",
	"Too many sessions; try again later.":                       "Troppe sessioni; riprova più tardi.",
	"The logout form must be sent from this server's own page.": "Il modulo di uscita va inviato dalla pagina di questo server.",
}

// trLogin translates a login page message (or a problem detail shown on a page).
func trLogin(l lang, msg string) string {
	if l != langIT || msg == "" {
		return msg
	}
	if it, ok := loginIT[msg]; ok {
		return it
	}
	if role, ok := strings.CutPrefix(msg, "The ledger page is for the DPO; this token's role is "); ok {
		return "La pagina del registro è per il DPO; il ruolo di questo token è " + strings.TrimSuffix(role, ".") + "."
	}
	if it, ok := problemIT[msg]; ok && !strings.Contains(msg, "%") {
		return it
	}
	return msg
}
