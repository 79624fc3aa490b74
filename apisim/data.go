package apisim

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Streams the simulator serves, in the order `/_sim/truth` lists them.
var Streams = []string{"companies", "users", "invoices", "leads", "opportunities", "charges"}

// epoch is the simulated clock's start: data is deterministic because nothing reads the wall clock.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const history = int64(730 * 24 * time.Hour / time.Millisecond) // base rows span two years before epoch

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

// money renders cents as a decimal JSON number with two fraction digits ("10.63").
func appendMoney(b []byte, cents int64) []byte {
	if cents < 0 {
		b = append(b, '-')
		cents = -cents
	}
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	if c := cents % 100; c < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, cents%100, 10)
}

// gen renders rows; it reads the tables but never writes them.
type gen struct {
	seed      uint64
	baseURL   string
	companies *table
	users     *table
	companyID func(i int) string
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

func (g *gen) companyName(j int) string {
	// Names sort like their index (the API sorts companies by NAME) and carry unicode.
	return fmt.Sprintf("%s %08d", pick(companyW, rnd(g.seed, "companies", j, 1)), j)
}

var companyStatuses = []string{"ACTIVE", "INACTIVE", "SUSPENDED"}

// companyStatus is the field every company update changes (the truth's version field).
func companyStatus(t *table, seed uint64, i int) string {
	base := int(rnd(seed, "companies", i, 2) % 2)
	return companyStatuses[(base+t.version[i])%len(companyStatuses)]
}

func (g *gen) company(b []byte, t *table, i int) []byte {
	h := rnd(g.seed, "companies", i, 3)
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
	b = strconv.AppendInt(b, t.created(i), 10)
	b = append(b, `,"industry":`...)
	b = appendStrOrNull(b, pick([]string{"Software", "Retail", "Health"}, h>>20), h%4 == 0)
	b = append(b, `,"salesAgent":null,"emailAddress":`...)
	b = appendStrOrNull(b, fmt.Sprintf("billing%d@example.com", i), h%6 == 0)
	b = append(b, `,"website":null,"picture":null,"vendor":`...)
	b = strconv.AppendBool(b, h%11 == 0)
	b = append(b, `,"reseller":`...)
	b = strconv.AppendBool(b, h%13 == 0)
	b = append(b, `,"channelAdmin":false,"externalId":`...)
	b = appendStrOrNull(b, fmt.Sprintf("ext-%d", i), h%2 == 0)
	b = append(b, `,"phoneNumber":null,"defaultRole":"USER","countryCode":`...)
	b = appendStr(b, pick(countries, h>>24))
	b = append(b, `,"status":`...)
	b = appendStr(b, companyStatus(t, g.seed, i))
	b = append(b, `,"thirtyDaysPurchaseLimitExempt":false,"thirtyDaysPurchaseLimitOverrideAmt":null,"dailyPurchaseLimitExempt":false,"dailyPurchaseLimitOverrideAmt":null,"importAppsEnabled":false,"onlyAdminsCanBuy":false}`...)
	return b
}

func (g *gen) user(b []byte, t *table, i int) []byte {
	h := rnd(g.seed, "users", i, 3)
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
	b = appendStr(b, pick([]string{"en_US", "fr_CA", "de_DE", "ja_JP"}, h>>8))
	b = append(b, `,"currency":`...)
	b = appendStr(b, pick(currencies, h>>12))
	b = append(b, `,"roles":["ROLE_USER"`...)
	if h%9 == 0 {
		b = append(b, `,"ROLE_CORPORATE_ADMIN"`...)
	}
	b = append(b, `],"company":{"uuid":`...)
	b = appendStr(b, g.companyID(cj))
	b = append(b, `},"lastModified":`...)
	b = strconv.AppendInt(b, t.modified(i), 10)
	return append(b, '}')
}

var invoiceStatuses = []string{"PAID", "UNPAID", "CARRIED", "VOIDED"}

func invoiceStatus(t *table, seed uint64, i int) string {
	base := int(rnd(seed, "invoices", i, 2) % 2) // PAID or UNPAID at creation
	return invoiceStatuses[(base+t.version[i])%len(invoiceStatuses)]
}

func (g *gen) invoice(b []byte, t *table, i int) []byte {
	h := rnd(g.seed, "invoices", i, 3)
	cj := g.companyRef("invoices", i, 5)
	uj := 0
	if g.users.base > 0 {
		uj = int(rnd(g.seed, "invoices", i, 6) % uint64(g.users.base))
	}
	created := t.created(i)
	b = append(b, `{"invoiceId":`...)
	b = strconv.AppendInt(b, int64(1000+i), 10)
	b = append(b, `,"referenceNumber":`...)
	b = appendStr(b, fmt.Sprintf("INV-%d", 1000+i))
	b = append(b, `,"creationDate":`...)
	if h%20 == 0 { // the billing guides' ISO-8601 with offset
		b = appendStr(b, time.UnixMilli(created).In(time.FixedZone("", -6*3600)).Format("2006-01-02T15:04:05.000-07:00"))
	} else {
		b = strconv.AppendInt(b, created, 10)
	}
	b = append(b, `,"dueDate":`...)
	b = strconv.AppendInt(b, created+30*86400000, 10)
	b = append(b, `,"status":`...)
	b = appendStr(b, invoiceStatus(t, g.seed, i))
	b = append(b, `,"currency":`...)
	b = appendStr(b, pick(currencies, h>>8))
	b = append(b, `,"total":`...)
	if h%50 == 0 {
		b = append(b, "null"...)
	} else {
		b = appendMoney(b, int64(h>>16%500000))
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
	b = append(b, `},"delegatedToInvoice":null,"includedInvoices":null,"invoiceLines":[{"description":"Subscription","quantity":1,"total":`...)
	b = appendMoney(b, int64(h>>16%500000))
	return append(b, `}],"links":[]}`...)
}

var leadStatuses = []string{"SUBMITTED", "ASSIGNED", "PENDING_CONVERSION_APPROVAL", "CONVERTED", "DISQUALIFIED"}

func (g *gen) leadStatus(t *table, i int) string {
	base := int(rnd(g.seed, "leads", i, 2) % 3)
	return leadStatuses[min(base+t.version[i], len(leadStatuses)-1)]
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

func (g *gen) lead(b []byte, t *table, i int) []byte {
	h := rnd(g.seed, "leads", i, 3)
	cj := g.companyRef("leads", i, 5)
	first, last := g.personName("leads", i, 4)
	created, modified := g.leadTimes(t, i)
	unit := int64(1)
	if leadSeconds(g.seed, i) {
		unit = 1000
	}
	status := g.leadStatus(t, i)
	b = append(b, `{"id":`...)
	b = appendStr(b, uuidOf(g.seed, "leads", i))
	b = append(b, `,"createdOn":`...)
	b = strconv.AppendInt(b, created/unit, 10)
	b = append(b, `,"lastModified":`...)
	b = strconv.AppendInt(b, modified/unit, 10)
	b = append(b, `,"creator":{"companyId":`...)
	b = appendStr(b, g.companyID(cj))
	b = append(b, `,"companyName":`...)
	b = appendStr(b, g.companyName(cj))
	b = append(b, `,"id":`...)
	b = appendStr(b, uuidOf(g.seed, "users", int(h>>4)%max(g.users.base, 1)))
	b = append(b, `,"role":"RESELLER"},"customAttributes":{},"customer":{"company":{"city":`...)
	ci := int(h>>8) % len(cities)
	b = appendStr(b, cities[ci])
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
		b = appendStr(b, "Called twice — “interested”\nfollow up")
	}
	return append(b, '}')
}

var oppStatuses = []string{"OPEN", "PENDING_REVIEW", "CLOSED"}

func oppStatus(t *table, seed uint64, i int) string {
	base := int(rnd(seed, "opportunities", i, 2) % 2)
	return oppStatuses[(base+t.version[i])%len(oppStatuses)]
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
	h := rnd(g.seed, "opportunities", i, 3)
	created := t.created(i)
	b = append(b, `{"id":`...)
	b = appendStr(b, uuidOf(g.seed, "opportunities", i))
	b = append(b, `,"name":`...)
	b = appendStrOrNull(b, fmt.Sprintf("Prospect N%d", i), h%8 == 0)
	b = append(b, `,"ownerUser":`...)
	b = g.oppUser(b, "opportunities", i, 20)
	b = append(b, `,"customerUser":`...)
	b = g.oppUser(b, "opportunities", i, 40)
	b = append(b, `,"createdOn":`...)
	if h%20 == 0 { // the detail endpoint's numeric strings
		b = appendStr(b, strconv.FormatInt(created, 10))
	} else {
		b = strconv.AppendInt(b, created, 10)
	}
	b = append(b, `,"purchaseEffectiveDate":`...)
	if status := oppStatus(t, g.seed, i); status == "OPEN" {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, created+int64(h%90)*86400000, 10)
	}
	b = append(b, `,"status":`...)
	b = appendStr(b, oppStatus(t, g.seed, i))
	b = append(b, `,"ownerType":`...)
	b = appendStr(b, pick([]string{"PLATFORM_OWNER", "RESELLER", "SSR"}, h>>8))
	b = append(b, `,"createdByUser":`...)
	b = g.oppUser(b, "opportunities", i, 60)
	return append(b, '}')
}

func (g *gen) charge(b []byte, t *table, i int, locationID, appID string) []byte {
	h := rnd(g.seed, t.name, i, 3)
	units := int64(1 + h%500)
	priceMicros := int64(1000 + (h>>10)%99000) // 0.001000 .. 0.099999 per unit
	refunded := t.version[i]%2 == 1
	b = append(b, `{"chargeId":`...)
	b = appendStr(b, hlID(g.seed, t.name, i))
	b = append(b, `,"appId":`...)
	b = appendStr(b, appID)
	b = append(b, `,"meterId":`...)
	b = appendStr(b, pick(meters, h>>20))
	b = append(b, `,"entityType":"location","entityId":`...)
	b = appendStr(b, locationID)
	b = append(b, `,"amountCharged":`...)
	b = appendMicros(b, units*priceMicros)
	b = append(b, `,"pricePerUnit":`...)
	b = appendMicros(b, priceMicros)
	b = append(b, `,"units":`...)
	b = strconv.AppendInt(b, units, 10)
	b = append(b, `,"currency":"USD","transactionType":`...)
	b = appendStr(b, pick([]string{"charge", "charge", "charge", "refund"}, h>>30))
	b = append(b, `,"refunded":`...)
	b = strconv.AppendBool(b, refunded)
	b = append(b, `,"meta":{"eventId":`...)
	b = appendStr(b, fmt.Sprintf("evt_%d", i))
	b = append(b, `,"description":`...)
	b = appendStr(b, fmt.Sprintf("Charge for sending %d SMS messages", units))
	b = append(b, `,"eventTime":`...)
	b = appendStr(b, isoMillis(t.created(i)))
	b = append(b, `},"createdAt":`...)
	b = appendStr(b, isoMillis(t.created(i)))
	b = append(b, `,"updatedAt":`...)
	b = appendStr(b, isoMillis(t.modified(i)))
	return append(b, '}')
}

// appendMicros renders a value in millionths as a JSON decimal number with 6 fraction digits.
func appendMicros(b []byte, v int64) []byte {
	b = strconv.AppendInt(b, v/1_000_000, 10)
	frac := strconv.FormatInt(v%1_000_000+1_000_000, 10)[1:]
	return append(append(b, '.'), frac...)
}

// seedHash turns a user-facing seed into the generator's seed.
func seedHash(seed int64) uint64 {
	return uint64(seed)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
}
