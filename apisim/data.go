package apisim

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Streams the simulator serves, in the order `/_sim/truth` lists them.
var Streams = []string{"companies", "users", "invoices", "leads", "opportunities", "events", "charges"}

// history is how far back base rows reach: they span the two years before Config.Start. Data is
// deterministic because nothing but Config.Start says what "now" is.
const history = int64(730 * 24 * time.Hour / time.Millisecond)

const dayMs = int64(24 * time.Hour / time.Millisecond)

// rnd is a stateless hash: the same (seed, stream, i, salt) always gives the same value.
func rnd(seed uint64, stream string, i int, salt uint64) uint64 {
	h := seed*0x9E3779B97F4A7C15 ^ uint64(i)*0xBF58476D1CE4E5B9 ^ salt*0x94D049BB133111EB
	for k := 0; k < len(stream); k++ {
		h = (h ^ uint64(stream[k])) * 0x100000001B3
	}
	h ^= h >> 31
	h *= 0xD6E8FEB86659FD93
	h ^= h >> 32
	return h
}

func uuidOf(seed uint64, kind string, i int) string {
	a, b := rnd(seed, kind, i, 11), rnd(seed, kind, i, 12)
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], a)
	binary.BigEndian.PutUint64(buf[8:], b)
	buf[6] = buf[6]&0x0f | 0x40
	buf[8] = buf[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", buf[0:4], buf[4:6], buf[6:8], buf[8:10], buf[10:16])
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// hlID returns a 20-character HighLevel-style id.
func hlID(seed uint64, kind string, i int) string {
	var b [20]byte
	for k := range b {
		b[k] = alnum[rnd(seed, kind, i, uint64(100+k))%uint64(len(alnum))]
	}
	return string(b[:])
}

var (
	firstNames = []string{"John", "Jane", "Zoë", "Renée", "José", "Łukasz", "Aiko", "Søren", "Mónica", "Chloé", "Nguyễn", "Ahmed", "Olga", "Wei", "Priya", "Björn"}
	lastNames  = []string{"Doe", "Smith", "Müller", "García", "O'Brien", "Kowalski", "Tanaka", "Ødegaard", "Dubois", "Rossi", "Ivanova", "Chen", "Patel", "Nyström", "Silva", "Øster"}
	companyW   = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Müller & Söhne", "Café Crème", "東京商事", "Ωmega", "Straße"}
	cities     = []string{"Somerville", "Beverly Hills", "Montréal", "São Paulo", "Zürich", "Austin", "Houston", "Kraków", "Malmö", "Tokyo"}
	countries  = []string{"US", "US", "CA", "BR", "CH", "US", "US", "PL", "SE", "JP"}
	currencies = []string{"USD", "USD", "EUR", "CAD", "GBP", "JPY", "BRL", "CHF"}
	meters     = []string{"680b97022b4a34420f5f9b93", "680b97022b4a34420f5f9b94", "680b97022b4a34420f5f9b95"}
)

func pick[T any](s []T, h uint64) T { return s[h%uint64(len(s))] }

// appendStr appends s as a JSON string; non-ASCII stays raw UTF-8 as real APIs send it.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			if c < 0x20 {
				b = append(b, fmt.Sprintf(`\u%04x`, c)...)
			} else {
				r, n := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && n == 1 {
					b = append(b, `\ufffd`...)
				} else {
					b = append(b, s[i:i+n]...)
				}
				i += n
				continue
			}
		}
		i++
	}
	return append(b, '"')
}

func appendKey(b []byte, k string) []byte {
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func appendStrOrNull(b []byte, s string, null bool) []byte {
	if null {
		return append(b, "null"...)
	}
	return appendStr(b, s)
}

func isoMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000}

// appendDec renders v / 10^scale as decimal text with at least minFrac fraction digits; further
// fraction digits only where they are not trailing zeros ("10.63", "10.6", "10", "10.6300000000").
func appendDec(b []byte, v int64, scale, minFrac int) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/pow10[scale], 10)
	frac := []byte(strconv.FormatInt(v%pow10[scale]+pow10[scale], 10)[1:])
	n := len(frac)
	for n > minFrac && n > 0 && frac[n-1] == '0' {
		n--
	}
	for len(frac) < minFrac {
		frac = append(frac, '0')
	}
	if max(n, minFrac) == 0 {
		return b
	}
	return append(append(b, '.'), frac[:max(n, minFrac)]...)
}

// appendMoney renders cents as a decimal JSON number with two fraction digits ("10.63").
func appendMoney(b []byte, cents int64) []byte { return appendDec(b, cents, 2, 2) }

// Money forms: the documents type money as "number" and show decimal strings with ten fraction
// digits; JavaScript servers print float arithmetic's noise. The served text is the value.
const (
	moneyFixed    = iota // JSON number with the currency's fraction digits: 10.63, JPY 1063
	moneyShortest        // JSON number without trailing zeros: 10.6, 10
	moneyString          // decimal string with ten fraction digits: "10.6300000000"
	moneyFloat           // float64 arithmetic printed shortest: 0.30000000000000004
)

// appendMoneyForm renders minor units (exp fraction digits: 2 for cents, 0 for JPY).
func appendMoneyForm(b []byte, minor int64, exp, form int) []byte {
	switch form {
	case moneyShortest, moneyFloat:
		return appendDec(b, minor, exp, 0)
	case moneyString:
		b = append(b, '"')
		b = appendDec(b, minor, exp, 10)
		return append(b, '"')
	}
	return appendDec(b, minor, exp, exp)
}

// floatText is the shortest text that reads back as f, without exponent, as JSON.stringify
// prints it for the magnitudes money has.
func floatText(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// noisy reports whether a float's shortest text shows more than ten fraction digits.
func noisy(s string) bool {
	_, frac, ok := strings.Cut(s, ".")
	return ok && len(frac) > 10
}

// Timestamp forms of AppDirect members documented as epoch milliseconds (§2.6): numbers, numeric
// strings and, in billing, ISO-8601 with offsets.
const (
	tsNumber     = iota // 1565705679871
	tsString            // "1565705679871"
	tsISOMinus6         // "2015-08-16T14:47:50.123-06:00"
	tsISOPlus0          // "2015-08-16T20:47:50.123+0000"
	tsISOPlus530        // "2015-08-17T02:17:50.123+0530"
	tsISOWhole          // "2015-08-16T14:47:50-06:00" (whole seconds only, else tsISOMinus6)
)

var (
	zoneMinus6  = time.FixedZone("", -6*3600)
	zonePlus530 = time.FixedZone("", 5*3600+1800)
)

func appendEpochMs(b []byte, ms int64, form int) []byte {
	switch form {
	case tsString:
		b = append(b, '"')
		b = strconv.AppendInt(b, ms, 10)
		return append(b, '"')
	case tsISOMinus6, tsISOPlus0, tsISOPlus530, tsISOWhole:
		t := time.UnixMilli(ms)
		layout := "2006-01-02T15:04:05.000-07:00"
		switch {
		case form == tsISOPlus0:
			t, layout = t.UTC(), "2006-01-02T15:04:05.000-0700"
		case form == tsISOPlus530:
			t, layout = t.In(zonePlus530), "2006-01-02T15:04:05.000-0700"
		case form == tsISOWhole && ms%1000 == 0:
			t, layout = t.In(zoneMinus6), "2006-01-02T15:04:05-07:00"
		default:
			t = t.In(zoneMinus6)
		}
		b = append(b, '"')
		b = t.AppendFormat(b, layout)
		return append(b, '"')
	}
	return strconv.AppendInt(b, ms, 10)
}

// HighLevel date-time forms (RFC 3339, as its OpenAPI spec requires).
func appendHLTime(b []byte, ms int64, form int) []byte {
	layout := "2006-01-02T15:04:05.000Z07:00"
	switch form {
	case 1:
		layout = "2006-01-02T15:04:05.000-07:00" // +00:00
	case 2:
		layout = "2006-01-02T15:04:05.000000Z07:00"
	}
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, layout)
	return append(b, '"')
}

// gen renders rows; it reads the tables but never writes them.
type gen struct {
	seed      uint64
	baseURL   string
	start     int64 // the simulated clock at start (epoch ms): ages of base rows are relative to it
	varied    bool
	companies *table
	users     *table
	companyID func(i int) string
	// usersNoTime is Hostile.UsersWithoutTimestamps: the share of users served without
	// lastModified.
	usersNoTime float64
}

// userHidesTime reports whether user i is served without lastModified.
func (g *gen) userHidesTime(i int) bool {
	return g.usersNoTime > 0 && float64(rnd(g.seed, "users", i, 90)%10000) < g.usersNoTime*10000
}

// form picks a value form for one member of one row: 0 (the plain form) always in plain mode;
// in varied mode 0 for about 70% of rows and each of the n-1 others about equally often.
func (g *gen) form(h uint64, n int) int {
	if !g.varied || n < 2 {
		return 0
	}
	p := int(h % 100)
	if p < 70 {
		return 0
	}
	return 1 + (p-70)*(n-1)/30
}

func (g *gen) personName(stream string, i int, salt uint64) (string, string) {
	return pick(firstNames, rnd(g.seed, stream, i, salt)), pick(lastNames, rnd(g.seed, stream, i, salt+1))
}

// companyRef returns the index of an existing base company for row i of another stream.
func (g *gen) companyRef(stream string, i int, salt uint64) int {
	if g.companies.base == 0 {
		return 0
	}
	return int(rnd(g.seed, stream, i, salt) % uint64(g.companies.base))
}

// oddSuffixes are text a correct client must store byte for byte: quotes, backslashes, control
// characters, astral code points, markup.
var oddSuffixes = []string{` "Quoted" & Co`, ` Back\slash`, " 😀 Smiles", " Tab\tSep", " Line\nBreak", " Ünïcødé Ltd",
	" 𝔘𝔫𝔦 Corp", " <b>bold</b>", " Cr\r\nLf", " \u0001ctl", " \u202ertl", " Sep\u2028Line"}

func (g *gen) companyName(j int) string {
	// Names sort like their index (the API sorts companies by NAME) and carry unicode.
	name := fmt.Sprintf("%s %08d", pick(companyW, rnd(g.seed, "companies", j, 1)), j)
	if h := rnd(g.seed, "companies", j, 40); g.varied && h%100 < 8 {
		name += pick(oddSuffixes, h>>8)
	}
	return name
}

var companyStatuses = []string{"ACTIVE", "INACTIVE", "SUSPENDED"}

// companyStatus is the field every company update changes (the truth's version field).
func companyStatus(t *table, seed uint64, i int) string {
	base := int(rnd(seed, "companies", i, 2) % 2)
	return companyStatuses[(base+t.version[i])%len(companyStatuses)]
}

func (g *gen) company(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "companies", i, 3)
	hb := rnd(g.seed, "companies", i, 30) // booleans and purchase limits
	hv := rnd(g.seed, "companies", i, 31) // value forms
	b = append(b, '{')
	b = appendKey(b, "uuid")
	b = appendStr(b, uuidOf(g.seed, "companies", i))
	b = append(b, ',')
	b = appendKey(b, "name")
	b = appendStr(b, g.companyName(i))
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, h%7 != 0)
	b = append(b, `,"address":`...)
	if h%5 == 0 {
		b = append(b, "null"...)
	} else {
		ci := int(h>>8) % len(cities)
		b = append(b, `{"street1":`...)
		b = appendStr(b, fmt.Sprintf("%d Main St.", 1+h%900))
		b = append(b, `,"street2":"","city":`...)
		b = appendStr(b, cities[ci])
		b = append(b, `,"state":"MA","zip":"02114","country":`...)
		b = appendStr(b, countries[ci])
		b = append(b, '}')
	}
	b = append(b, `,"companySize":`...)
	b = appendStrOrNull(b, pick([]string{"SMALL", "MEDIUM", "ENTERPRISE"}, h>>12), h%3 == 0)
	b = append(b, `,"customAttributes":[{"name":"headquarters","value":`...)
	b = appendStr(b, pick(cities, h>>16))
	b = append(b, `}],"creationDate":`...)
	b = appendEpochMs(b, t.created(i), g.form(hv, 2))
	b = append(b, `,"industry":`...)
	b = appendStrOrNull(b, pick([]string{"Software", "Retail", "Health"}, h>>20), h%4 == 0)
	b = append(b, `,"salesAgent":null,"emailAddress":`...)
	b = appendStrOrNull(b, fmt.Sprintf("billing%d@example.com", i), h%6 == 0)
	b = append(b, `,"website":null,"picture":null,"vendor":`...)
	b = strconv.AppendBool(b, h%11 == 0)
	b = append(b, `,"reseller":`...)
	b = strconv.AppendBool(b, h%13 == 0)
	b = append(b, `,"channelAdmin":`...)
	b = strconv.AppendBool(b, hb%9 == 0)
	b = append(b, `,"externalId":`...)
	b = appendStrOrNull(b, fmt.Sprintf("ext-%d", i), h%2 == 0)
	b = append(b, `,"phoneNumber":null,"defaultRole":"USER","countryCode":`...)
	b = appendStr(b, pick(countries, h>>24))
	b = append(b, `,"status":`...)
	b = appendStr(b, companyStatus(t, g.seed, i))
	// Purchase limits: an override amount only where the company is not exempt.
	for k, name := range []string{"thirtyDays", "daily"} {
		hk := hb >> (8 + 16*k)
		exempt := hk%5 == 0
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `PurchaseLimitExempt":`...)
		b = strconv.AppendBool(b, exempt)
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `PurchaseLimitOverrideAmt":`...)
		if exempt || (hk>>4)%3 != 0 {
			b = append(b, "null"...)
		} else {
			b = appendMoneyForm(b, int64(100_000+(hk>>8)%5_000_000), 2, g.form(hv>>(8+8*k), 3))
		}
	}
	b = append(b, `,"importAppsEnabled":`...)
	b = strconv.AppendBool(b, (hb>>40)%3 == 0)
	b = append(b, `,"onlyAdminsCanBuy":`...)
	b = strconv.AppendBool(b, (hb>>48)%4 == 0)
	b = append(b, '}')
	return g.vary(b, start, "companies", i)
}

func (g *gen) user(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "users", i, 3)
	hv := rnd(g.seed, "users", i, 31)
	first, last := g.personName("users", i, 4)
	id := uuidOf(g.seed, "users", i)
	email := fmt.Sprintf("user%d@example.com", i)
	cj := g.companyRef("users", i, 5)
	b = append(b, `{"uuid":`...)
	b = appendStr(b, id)
	b = append(b, `,"email":`...)
	b = appendStr(b, email)
	b = append(b, `,"userName":`...)
	b = appendStr(b, email)
	b = append(b, `,"firstName":`...)
	b = appendStrOrNull(b, first, h%17 == 0)
	b = append(b, `,"lastName":`...)
	b = appendStr(b, last)
	b = append(b, `,"openId":`...)
	b = appendStr(b, g.baseURL+"/openid/id/"+id)
	b = append(b, `,"externalId":`...)
	b = appendStrOrNull(b, fmt.Sprintf("u-%d", i), h%3 == 0)
	b = append(b, `,"locale":`...)
	// Every update changes the locale, so that an update is visible even where lastModified
	// is not served.
	b = appendStr(b, pick([]string{"en_US", "fr_CA", "de_DE", "ja_JP"}, h>>8+uint64(t.version[i])))
	b = append(b, `,"currency":`...)
	b = appendStr(b, pick(currencies, h>>12))
	b = append(b, `,"roles":["ROLE_USER"`...)
	if h%9 == 0 {
		b = append(b, `,"ROLE_CORPORATE_ADMIN"`...)
	}
	b = append(b, `],"company":{"uuid":`...)
	b = appendStr(b, g.companyID(cj))
	b = append(b, '}')
	if !g.userHidesTime(i) {
		b = append(b, `,"lastModified":`...)
		b = appendEpochMs(b, t.modified(i), g.form(hv, 2))
	}
	b = append(b, '}')
	return g.vary(b, start, "users", i)
}

// Invoice statuses in the order updates move them: an unpaid invoice gets paid, and so on.
var invoiceStatuses = []string{"UNPAID", "PAID", "CARRIED", "VOIDED"}

// invoiceStatus: at creation, young invoices are often unpaid and old ones rarely, so unpaid
// invoices spread over the aging buckets; every update moves the status on (the version field).
func invoiceStatus(t *table, seed uint64, start int64, i int) string {
	h := rnd(seed, "invoices", i, 2)
	age := (start - t.created(i)) / dayMs
	unpaidPct := uint64(1)
	switch {
	case age < 30:
		unpaidPct = 70
	case age < 60:
		unpaidPct = 50
	case age < 90:
		unpaidPct = 40
	case age < 120:
		unpaidPct = 30
	case age < 365:
		unpaidPct = 4
	}
	base := 1 // PAID
	switch p := h % 100; {
	case p < unpaidPct:
		base = 0
	case p >= 98:
		base = 3 // VOIDED
	}
	return invoiceStatuses[(base+t.version[i])%len(invoiceStatuses)]
}

// invoiceTimes returns creation and due date (epoch ms).
func (g *gen) invoiceTimes(t *table, i int) (created, due int64) {
	created = t.created(i)
	return created, created + 30*dayMs
}

func (g *gen) invoice(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "invoices", i, 3)
	hv := rnd(g.seed, "invoices", i, 31)
	cj := g.companyRef("invoices", i, 5)
	uj := 0
	if g.users.base > 0 {
		uj = int(rnd(g.seed, "invoices", i, 6) % uint64(g.users.base))
	}
	currency := pick(currencies, h>>8)
	exp := 2 // fraction digits of the currency's minor unit
	if currency == "JPY" {
		exp = 0 // no minor unit: whole yen
	}
	amount := int64(h >> 16 % 500000)
	// Lines split the total; the total is their sum.
	lines := []int64{amount}
	if g.varied {
		if n := int(hv>>40) % 3; n > 0 && amount > 10 {
			lines = lines[:0]
			rest := amount
			for k := 0; k < n; k++ {
				part := int64(rnd(g.seed, "invoices", i, uint64(50+k)) % uint64(rest))
				lines = append(lines, part)
				rest -= part
			}
			lines = append(lines, rest)
		}
	}
	created, due := g.invoiceTimes(t, i)
	b = append(b, `{"invoiceId":`...)
	b = strconv.AppendInt(b, int64(1000+i), 10)
	b = append(b, `,"referenceNumber":`...)
	b = appendStr(b, fmt.Sprintf("INV-%d", 1000+i))
	b = append(b, `,"creationDate":`...)
	switch {
	case g.varied:
		b = appendEpochMs(b, created, g.form(hv, 6))
	case h%20 == 0: // the billing guides' ISO-8601 with offset
		b = appendEpochMs(b, created, tsISOMinus6)
	default:
		b = appendEpochMs(b, created, tsNumber)
	}
	b = append(b, `,"dueDate":`...)
	b = appendEpochMs(b, due, g.form(hv>>8, 6))
	b = append(b, `,"status":`...)
	b = appendStr(b, invoiceStatus(t, g.seed, g.start, i))
	b = append(b, `,"currency":`...)
	b = appendStr(b, currency)
	mf := g.form(hv>>16, 4)
	b = append(b, `,"total":`...)
	switch {
	case h%50 == 0:
		b = append(b, "null"...)
	case mf == moneyFloat:
		var f float64
		for _, l := range lines {
			f += float64(l) / float64(pow10[exp])
		}
		b = append(b, floatText(f)...) // float noise when the sum is not exact
	default:
		b = appendMoneyForm(b, amount, exp, mf)
	}
	b = append(b, `,"orderIds":[`...)
	b = appendStr(b, strconv.Itoa(3000+i))
	b = append(b, `],"company":{"-id":`...)
	cid := g.companyID(cj)
	b = appendStr(b, cid)
	b = append(b, `,"-href":`...)
	b = appendStr(b, g.baseURL+"/api/account/v1/companies/"+cid)
	b = append(b, `},"user":{"-id":`...)
	b = appendStr(b, uuidOf(g.seed, "users", uj))
	b = append(b, `},"delegatedToInvoice":null,"includedInvoices":null,"invoiceLines":[`...)
	for k, l := range lines {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"description":`...)
		b = appendStr(b, []string{"Subscription", "Usage", "Setup fee", "Support"}[k])
		b = append(b, `,"quantity":1,"total":`...)
		b = appendMoneyForm(b, l, exp, mf)
		b = append(b, '}')
	}
	b = append(b, `],"links":[]}`...)
	return g.vary(b, start, "invoices", i)
}

var leadStatuses = []string{"SUBMITTED", "ASSIGNED", "PENDING_CONVERSION_APPROVAL", "CONVERTED", "DISQUALIFIED"}

// leadStatus: old leads are mostly converted or disqualified, young ones mostly open; updates
// move open leads on towards CONVERTED.
func (g *gen) leadStatus(t *table, i int) string {
	p := int(rnd(g.seed, "leads", i, 2) % 100)
	cum := []int{45, 75, 90, 97, 100}
	if g.start-t.created(i) > 60*dayMs {
		cum = []int{10, 20, 25, 70, 100}
	}
	base := 0
	for p >= cum[base] {
		base++
	}
	if base >= 3 {
		return leadStatuses[base]
	}
	return leadStatuses[min(base+t.version[i], 3)]
}

// leadSeconds reports whether row i renders its timestamps in epoch seconds, as the lead v2 list
// example does; such rows keep whole-second times so nothing is lost in the unit change.
func leadSeconds(seed uint64, i int) bool { return rnd(seed, "leads", i, 9)%10 == 0 }

func (g *gen) leadTimes(t *table, i int) (created, modified int64) {
	created, modified = t.created(i), t.modified(i)
	if leadSeconds(g.seed, i) {
		created, modified = created/1000*1000, modified/1000*1000
	}
	return
}

var leadNotes = []string{"Called twice — “interested”\nfollow up", `Said "call back" at 5\6`, "😀 happy customer\tre-sent quote",
	"Zoë's café — naïve résumé", "Line1\r\nLine2 \u0001ctl", "<script>alert(1)</script> & more", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 notes"}

func (g *gen) lead(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "leads", i, 3)
	hv := rnd(g.seed, "leads", i, 31)
	cj := g.companyRef("leads", i, 5)
	first, last := g.personName("leads", i, 4)
	created, modified := g.leadTimes(t, i)
	tsForm := g.form(hv, 2)
	unit := int64(1)
	if leadSeconds(g.seed, i) {
		unit, tsForm = 1000, tsNumber
	}
	status := g.leadStatus(t, i)
	b = append(b, `{"id":`...)
	b = appendStr(b, uuidOf(g.seed, "leads", i))
	b = append(b, `,"createdOn":`...)
	b = appendEpochMs(b, created/unit, tsForm)
	b = append(b, `,"lastModified":`...)
	b = appendEpochMs(b, modified/unit, tsForm)
	b = append(b, `,"creator":{"companyId":`...)
	b = appendStr(b, g.companyID(cj))
	b = append(b, `,"companyName":`...)
	b = appendStr(b, g.companyName(cj))
	b = append(b, `,"id":`...)
	b = appendStr(b, uuidOf(g.seed, "users", int(h>>4)%max(g.users.base, 1)))
	b = append(b, `,"role":"RESELLER"},"customAttributes":{},"customer":{"company":{"city":`...)
	ci := int(h>>8) % len(cities)
	b = appendStr(b, cities[ci])
	if g.varied && hv>>8%4 == 0 { // documented in the second list example
		b = append(b, `,"companyExists":`...)
		b = strconv.AppendBool(b, hv>>10%2 == 0)
	}
	b = append(b, `,"country":`...)
	b = appendStr(b, countries[ci])
	b = append(b, `,"name":`...)
	b = appendStr(b, pick(companyW, h>>12)+" Prospect")
	b = append(b, `,"zip":"90210"},"contact":{"email":`...)
	b = appendStr(b, fmt.Sprintf("lead%d@example.org", i))
	b = append(b, `,"firstName":`...)
	b = appendStr(b, first)
	b = append(b, `,"lastName":`...)
	b = appendStr(b, last)
	b = append(b, `,"phone":"+14455555555"}},"leadType":`...)
	b = appendStr(b, pick([]string{"MANUAL", "PRODUCT", "COMPANY"}, h>>16))
	b = append(b, `,"partner":"APPDIRECT","recipient":{"participantType":"CHANNEL","partner":"APPDIRECT"},"referrer":{"participantType":"CHANNEL","partner":"APPDIRECT"},"status":`...)
	b = appendStr(b, status)
	if status == "CONVERTED" {
		b = append(b, `,"result":"WON","convertedCompany":{"id":`...)
		b = appendStr(b, g.companyID(cj))
		b = append(b, `,"name":`...)
		b = appendStr(b, g.companyName(cj))
		b = append(b, '}')
	}
	if h%4 == 0 {
		b = append(b, `,"notes":`...)
		note := leadNotes[0]
		if g.varied {
			note = pick(leadNotes, hv>>16)
		}
		b = appendStr(b, note)
	}
	b = append(b, '}')
	return g.vary(b, start, "leads", i)
}

var oppStatuses = []string{"OPEN", "PENDING_REVIEW", "CLOSED"}

// oppStatus: old opportunities are mostly closed, young ones mostly open; updates move it on.
func oppStatus(t *table, seed uint64, start int64, i int) string {
	p := rnd(seed, "opportunities", i, 2) % 100
	base := 0
	if start-t.created(i) > 90*dayMs {
		switch {
		case p < 75:
			base = 2
		case p < 85:
			base = 1
		}
	} else {
		switch {
		case p < 10:
			base = 2
		case p < 40:
			base = 1
		}
	}
	return oppStatuses[(base+t.version[i])%len(oppStatuses)]
}

// oppTimes returns creation and purchase effective date (ok false: null, the opportunity is open).
func (g *gen) oppTimes(t *table, i int) (created, purchase int64, ok bool) {
	created = t.created(i)
	if oppStatus(t, g.seed, g.start, i) == "OPEN" {
		return created, 0, false
	}
	h := rnd(g.seed, "opportunities", i, 3)
	return created, created + int64(h%90)*dayMs, true
}

func (g *gen) oppUser(b []byte, stream string, i int, salt uint64) []byte {
	first, last := g.personName(stream, i, salt)
	cj := g.companyRef(stream, i, salt+7)
	b = append(b, `{"id":`...)
	b = appendStr(b, uuidOf(g.seed, "users", int(rnd(g.seed, stream, i, salt+3))%max(g.users.base, 1)))
	b = append(b, `,"email":`...)
	b = appendStr(b, fmt.Sprintf("%d.%d@example.net", i, salt))
	b = append(b, `,"firstName":`...)
	b = appendStr(b, first)
	b = append(b, `,"lastName":`...)
	b = appendStr(b, last)
	b = append(b, `,"company":{"id":`...)
	b = appendStr(b, g.companyID(cj))
	b = append(b, `,"name":`...)
	b = appendStr(b, g.companyName(cj))
	return append(b, `}}`...)
}

func (g *gen) opportunity(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "opportunities", i, 3)
	hv := rnd(g.seed, "opportunities", i, 31)
	created, purchase, hasPurchase := g.oppTimes(t, i)
	status := oppStatus(t, g.seed, g.start, i)
	b = append(b, `{"id":`...)
	b = appendStr(b, uuidOf(g.seed, "opportunities", i))
	b = append(b, `,"name":`...)
	name := fmt.Sprintf("Prospect N%d", i)
	if g.varied && hv>>24%10 == 0 {
		name += pick(oddSuffixes, hv>>28)
	}
	b = appendStrOrNull(b, name, h%8 == 0)
	b = append(b, `,"ownerUser":`...)
	b = g.oppUser(b, "opportunities", i, 20)
	b = append(b, `,"customerUser":`...)
	b = g.oppUser(b, "opportunities", i, 40)
	b = append(b, `,"createdOn":`...)
	if h%20 == 0 { // the detail endpoint's numeric strings
		b = appendEpochMs(b, created, tsString)
	} else {
		b = appendEpochMs(b, created, g.form(hv, 2))
	}
	b = append(b, `,"purchaseEffectiveDate":`...)
	if !hasPurchase {
		b = append(b, "null"...)
	} else {
		b = appendEpochMs(b, purchase, g.form(hv>>8, 2))
	}
	b = append(b, `,"status":`...)
	b = appendStr(b, status)
	b = append(b, `,"ownerType":`...)
	b = appendStr(b, pick([]string{"PLATFORM_OWNER", "RESELLER", "SSR"}, h>>8))
	b = append(b, `,"createdByUser":`...)
	b = g.oppUser(b, "opportunities", i, 60)
	b = append(b, '}')
	return g.vary(b, start, "opportunities", i)
}

// chargeKind: a refund is a charge row with transactionType "refund" (a minority); refunded
// marks an original charge that was refunded, at creation or by a later update.
func (g *gen) chargeKind(t *table, i int) (refund, refunded bool) {
	h := rnd(g.seed, t.name, i, 4)
	refund = h%100 < 7
	refunded = !refund && (h>>8%100 < 5 || t.version[i] > 0)
	return refund, refunded
}

func (g *gen) charge(b []byte, t *table, i int, locationID, appID string) []byte {
	start := len(b)
	h := rnd(g.seed, t.name, i, 3)
	hv := rnd(g.seed, t.name, i, 31)
	units := int64(1 + h%500)
	priceMicros := int64(1000 + (h>>10)%99000) // 0.001000 .. 0.099999 per unit
	refund, refunded := g.chargeKind(t, i)
	b = append(b, `{"chargeId":`...)
	b = appendStr(b, hlID(g.seed, t.name, i))
	b = append(b, `,"appId":`...)
	b = appendStr(b, appID)
	b = append(b, `,"meterId":`...)
	b = appendStr(b, pick(meters, h>>20))
	b = append(b, `,"entityType":"location","entityId":`...)
	b = appendStr(b, locationID)
	b = append(b, `,"amountCharged":`...)
	switch g.form(hv, 3) {
	case 1:
		b = appendDec(b, units*priceMicros, 6, 0)
	case 2: // a JavaScript server multiplies floats: the noise is the value it serves
		b = append(b, floatText(float64(units)*(float64(priceMicros)/1e6))...)
	default:
		b = appendDec(b, units*priceMicros, 6, 6)
	}
	b = append(b, `,"pricePerUnit":`...)
	if g.form(hv>>8, 2) == 1 {
		b = appendDec(b, priceMicros, 6, 0)
	} else {
		b = appendDec(b, priceMicros, 6, 6)
	}
	b = append(b, `,"units":`...)
	b = strconv.AppendInt(b, units, 10)
	b = append(b, `,"currency":"USD","transactionType":`...)
	if refund {
		b = appendStr(b, "refund")
	} else {
		b = appendStr(b, "charge")
	}
	b = append(b, `,"refunded":`...)
	b = strconv.AppendBool(b, refunded)
	tf := g.form(hv>>16, 3)
	b = append(b, `,"meta":{"eventId":`...)
	b = appendStr(b, fmt.Sprintf("evt_%d", i))
	b = append(b, `,"description":`...)
	b = appendStr(b, fmt.Sprintf("Charge for sending %d SMS messages", units))
	b = append(b, `,"eventTime":`...)
	b = appendHLTime(b, t.created(i), tf)
	if g.varied && hv>>24%3 == 0 { // documented meta member, sent only when the charge was raised with it
		b = append(b, `,"userId":`...)
		b = appendStr(b, hlID(g.seed, "hlusers", int(hv>>32%50)))
	}
	b = append(b, `},"createdAt":`...)
	b = appendHLTime(b, t.created(i), tf)
	b = append(b, `,"updatedAt":`...)
	b = appendHLTime(b, t.modified(i), tf)
	b = append(b, '}')
	return g.vary(b, start, t.name, i)
}

// location renders one installedLocations entry.
func (g *gen) location(b []byte, loc *location, k int) []byte {
	start := len(b)
	hv := rnd(g.seed, "locations", k, 31)
	b = append(b, `{"_id":`...)
	b = appendStr(b, loc.id)
	b = append(b, `,"name":`...)
	b = appendStr(b, loc.name)
	b = append(b, `,"address":`...)
	b = appendStr(b, loc.address)
	b = append(b, `,"isInstalled":`...)
	b = strconv.AppendBool(b, loc.installed)
	if loc.installed {
		b = append(b, `,"appVersionId":"ver_ghi789","versionId":"ver_ghi789","installedAt":`...)
		b = appendHLTime(b, loc.installedAt, g.form(hv, 2))
	}
	b = append(b, '}')
	return g.vary(b, start, "locations", k)
}

// appendMicros renders a value in millionths as a JSON decimal number with 6 fraction digits.
func appendMicros(b []byte, v int64) []byte { return appendDec(b, v, 6, 6) }

// seedHash turns a user-facing seed into the generator's seed.
func seedHash(seed int64) uint64 {
	return uint64(seed)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
}

// Event types of GET /api/channel/v1/events (the documented example is SUBSCRIPTION_ORDER);
// orders are the most common.
var eventTypes = []string{"SUBSCRIPTION_ORDER", "SUBSCRIPTION_ORDER", "SUBSCRIPTION_ORDER", "SUBSCRIPTION_CHANGE",
	"SUBSCRIPTION_CANCEL", "SUBSCRIPTION_NOTICE"}

var eventProducts = []string{"Office Suite", "CRM Pro", "Cloud Backup", "Télécom Plus", "Analytics 360", "Mail Secure"}

// eventErrors are the failures an unsuccessful event reports.
var eventErrors = [][2]string{{"CONFIGURATION_ERROR", "The vendor endpoint is not configured"},
	{"TRANSPORT_ERROR", "Connection to the vendor timed out"}, {"UNKNOWN_ERROR", "Unexpected response: 500"}}

// event renders subscription event i (§2.9 example shape). Events are a log: nothing about
// one changes after it is created (the simulator never updates them).
func (g *gen) event(b []byte, t *table, i int) []byte {
	start := len(b)
	h := rnd(g.seed, "events", i, 3)
	hb := rnd(g.seed, "events", i, 30)
	hv := rnd(g.seed, "events", i, 31)
	cj := g.companyRef("events", i, 5)
	b = append(b, `{"uuid":`...)
	b = appendStr(b, uuidOf(g.seed, "events", i))
	b = append(b, `,"type":`...)
	b = appendStr(b, pick(eventTypes, h))
	b = append(b, `,"creationDate":`...)
	b = appendEpochMs(b, t.created(i), g.form(hv, 2))
	product := 1000 + int((h>>8)%uint64(len(eventProducts)))
	b = fmt.Appendf(b, `,"product":{"productId":%d,"name":`, product)
	b = appendStr(b, eventProducts[product-1000])
	b = append(b, `,"links":[{"rel":"self","href":`...)
	b = appendStr(b, fmt.Sprintf("%s/api/marketplace/v1/products/%d", g.baseURL, product))
	b = append(b, `}]},"company":{"companyId":`...)
	companyID, noCompany := g.companyID(cj), (h>>16)%10 == 0 // as in the example: companyId null
	b = appendStrOrNull(b, companyID, noCompany)
	b = append(b, `,"name":`...)
	b = appendStr(b, g.companyName(cj))
	b = append(b, `,"links":[{"rel":"self","href":`...)
	if noCompany {
		companyID = "null"
	}
	b = appendStr(b, g.baseURL+"/api/account/v1/companies/"+companyID)
	b = append(b, `}]},"orderId":`...)
	b = strconv.AppendInt(b, int64(100+i/2), 10) // an order's events follow each other
	b = append(b, `,"subscriptionId":`...)
	b = appendStrOrNull(b, uuidOf(g.seed, "subscriptions", i/2), hb%4 == 0)
	successful := hb>>8%10 != 0
	b = append(b, `,"consumed":`...)
	b = strconv.AppendBool(b, hb>>16%5 != 0)
	b = append(b, `,"successful":`...)
	b = strconv.AppendBool(b, successful)
	b = append(b, `,"asynchronous":`...)
	b = strconv.AppendBool(b, hb>>24%3 == 0)
	b = append(b, `,"error":`...)
	if successful {
		b = append(b, `{"code":null,"message":null}`...)
	} else {
		e := pick(eventErrors, hb>>32)
		b = append(b, `{"code":`...)
		b = appendStr(b, e[0])
		b = append(b, `,"message":`...)
		b = appendStr(b, e[1])
		b = append(b, '}')
	}
	b = append(b, `,"manuallyResolved":`...)
	b = strconv.AppendBool(b, !successful && hb>>40%2 == 0)
	b = append(b, '}')
	return g.vary(b, start, "events", i)
}
