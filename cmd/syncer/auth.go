package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/schemas"
)

// authInput is where `syncer auth` reads the pasted redirect URL or code (tests replace it).
var authInput io.Reader = os.Stdin

// listenTimeout bounds how long `syncer auth highlevel --listen` waits for the browser.
var listenTimeout = 10 * time.Minute

// runAuth is `syncer auth highlevel`: the Authorization Code flow of a HighLevel marketplace
// app. It prints the authorize URL, takes the redirect back (pasted, or caught with --listen),
// checks its state, exchanges the code for the agency's tokens and saves them to the token file.
func runAuth(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("auth", "auth highlevel --config FILE [--tenant NAME] [--listen]", stdout)
	tenant := fs.String("tenant", "", "the tenant (of the config's tenants: list) whose HighLevel agency to authorize")
	cfgPath := fs.String("config", "", "YAML config `file` whose sources.highlevel has auth: refresh_token (required)")
	listen := fs.Bool("listen", false, "catch the browser's redirect on redirect_uri's loopback address instead of reading it from stdin")
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if target == "" && fs.NArg() > 0 {
		target = fs.Arg(0)
	}
	if target != "highlevel" {
		return usagef("auth: name the source to authorize: `syncer auth highlevel --config FILE` (only HighLevel has an authorization flow)")
	}
	if *cfgPath == "" {
		return usagef("auth highlevel: --config FILE is required (a config whose sources.highlevel has auth: refresh_token)")
	}
	f, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	sec, hl := "sources.highlevel", f.Sources.HighLevel
	if len(f.Tenants) > 0 || (*tenant != "" && *tenant != schemas.DefaultTenant) {
		var names []string
		hl = nil
		for i, tn := range f.TenantList() {
			names = append(names, tn.Name)
			if tn.Name == *tenant {
				sec, hl = fmt.Sprintf("tenants[%d].sources.highlevel", i), tn.Sources.HighLevel
			}
		}
		if hl == nil && !slices.Contains(names, *tenant) {
			return usagef("auth highlevel: name the tenant to authorize with --tenant (the config's tenants: %s)", strings.Join(names, ", "))
		}
	}
	switch {
	case hl == nil:
		return &config.Error{Key: sec, Msg: "is missing: add it with auth: refresh_token, client_id, client_secret, company_id, app_id and redirect_uri"}
	case hl.Auth != config.HLAuthRefreshToken:
		return &config.Error{Key: sec + ".auth", Msg: fmt.Sprintf("is %s: syncer auth highlevel is for auth: refresh_token (the Authorization Code flow)", hl.Auth)}
	case hl.RedirectURI == "":
		return &config.Error{Key: sec + ".redirect_uri", Msg: "is required by syncer auth highlevel: the redirect URL registered for the app in the HighLevel marketplace, e.g. http://localhost:8976/oauth/callback"}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	state := hex.EncodeToString(b[:])
	oc := extract.HighLevelOAuth(strings.TrimRight(hl.BaseURL, "/"), hl.ClientID, hl.ClientSecret, hl.AuthorizeURL, hl.RedirectURI, strings.Fields(hl.Scopes))
	authURL := oc.AuthCodeURL(state)

	var code string
	if *listen {
		code, err = catchRedirect(ctx, hl.RedirectURI, state, authURL, stdout)
	} else {
		fmt.Fprintf(stdout, "1. Open this URL in a browser, logged in as an admin of the agency, choose the agency (not a sub-account) and approve:\n\n   %s\n\n", authURL)
		fmt.Fprintf(stdout, "2. The browser is sent to %s?code=…; paste that whole address (or just the code) here and press Enter:\n", hl.RedirectURI)
		var line string
		line, err = bufio.NewReader(authInput).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && strings.TrimSpace(line) != "") {
			return usagef("auth highlevel: no redirect URL or code was given (stdin ended)")
		}
		code, err = codeFrom(strings.TrimSpace(line), state)
	}
	if err != nil {
		return err
	}
	client := extract.NewClient(slog.New(slog.DiscardHandler), extract.RetryPolicy{MaxAttempts: 3}, 0)
	defer client.CloseIdle()
	got, err := extract.AuthorizeHighLevel(ctx, client, oc, code, hl.CompanyID, hl.TokenFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "HighLevel authorized: agency %s, scopes %q. Tokens saved to %s (owner-only); syncer refreshes them from now on.\n",
		got.CompanyID, got.Scope, hl.TokenFile)
	return nil
}

// codeFrom reads the code out of a pasted redirect URL (checking its state) or takes a bare code.
func codeFrom(in, state string) (string, error) {
	if in == "" {
		return "", usagef("auth highlevel: nothing was pasted: paste the address the browser was redirected to, or its code")
	}
	if !strings.Contains(in, "://") && !strings.Contains(in, "code=") && !strings.Contains(in, "error=") {
		return in, nil // a bare code: nothing to check its state against
	}
	raw := in
	if i := strings.IndexByte(in, '?'); i >= 0 {
		raw = in[i+1:]
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", usagef("auth highlevel: the pasted address is not a URL with a query (%v): paste it whole, or just the code", err)
	}
	return checkRedirect(q, state)
}

// checkRedirect takes the code from a redirect's query, refusing an error or a state mismatch.
func checkRedirect(q url.Values, state string) (string, error) {
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("HighLevel did not authorize the app: error=%s %s; run `syncer auth highlevel` again and approve", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		return "", errors.New("the redirect's state does not match the authorize URL printed by this run (a redirect from an earlier attempt, or a link someone else made): run `syncer auth highlevel` again and use the new URL")
	}
	if q.Get("code") == "" {
		return "", errors.New("the redirect has no code: paste the address the browser was sent to after approving")
	}
	return q.Get("code"), nil
}

// catchRedirect serves redirect_uri on its loopback address until the browser arrives with this
// run's state: a request with another state is answered 400 and the wait goes on; the first with
// the right state ends it (with its code, or HighLevel's error).
func catchRedirect(ctx context.Context, redirectURI, state, authURL string, stdout io.Writer) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil || !config.IsLoopback(u.Hostname()) || u.Port() == "" {
		return "", &config.Error{Key: "sources.highlevel.redirect_uri", Msg: fmt.Sprintf("--listen needs a loopback redirect_uri with a port, e.g. http://localhost:8976/oauth/callback, registered for the app; it is %q", redirectURI)}
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return "", fmt.Errorf("--listen: %w", err)
	}
	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Get("state") != state {
			// Not this run's redirect (an earlier attempt's tab, a prefetch, someone else's
			// link): refuse it and keep waiting for the one that is.
			http.Error(w, "marketsync: this request's state does not match the authorize URL syncer printed; it is ignored. "+
				"Open the URL syncer printed, or finish in the tab it opened.", http.StatusBadRequest)
			fmt.Fprintf(stdout, "Ignored a request to %s whose state does not match this run's authorize URL; still waiting …\n", redirectURI)
			return
		}
		code, err := checkRedirect(r.URL.Query(), state)
		if err != nil {
			http.Error(w, "marketsync: "+err.Error(), http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "marketsync: HighLevel authorized. You can close this tab.")
		}
		select {
		case done <- result{code, err}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// Shutdown, not Close: the handler has signalled done before its answer reached the
	// browser; Close cut that connection (the browser saw an error, or retried to a closed
	// port), Shutdown lets the answer finish first.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	fmt.Fprintf(stdout, "Open this URL in a browser, logged in as an admin of the agency, choose the agency (not a sub-account) and approve:\n\n   %s\n\nWaiting for the redirect on %s …\n", authURL, redirectURI)
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	select {
	case r := <-done:
		return r.code, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("--listen: no redirect reached %s (%w); check that it is the app's registered redirect URL, or paste the redirect instead (without --listen)", redirectURI, ctx.Err())
	}
}
