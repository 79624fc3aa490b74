package extract

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateFactor is the share of a documented rate limit the client's limiters use. Running a few
// percent under the server's rate absorbs clock skew and scheduling jitter between client and
// server, so a client at full speed sees (almost) no 429s; every limiter derives its rate from
// a documented or announced limit times RateFactor.
const RateFactor = 0.97

// Budget is one server-side request budget: an AppDirect client credential, or a HighLevel app
// on one location or company. Every worker drawing on the budget shares its limiter and its
// pauses, so N workers never send N times the allowed rate, and one Retry-After pauses them all.
type Budget struct {
	Name    string
	limiter *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
	dailyLeft   int // -1: unknown
	dailyFloor  int
	lowSince    time.Time // when the server first said dailyLeft <= dailyFloor
}

// NewBudget returns a budget allowing perSecond requests with the given burst (perSecond <= 0:
// unlimited). dailyFloor stops requests once the server says fewer remain today.
func NewBudget(name string, perSecond float64, burst int, dailyFloor int) *Budget {
	lim := rate.NewLimiter(rate.Inf, 1)
	if perSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(perSecond), max(1, burst))
	}
	return &Budget{Name: name, limiter: lim, dailyLeft: -1, dailyFloor: dailyFloor}
}

// Wait blocks until a request may be sent: after any shared pause, then a limiter token. It
// fails with ErrDailyBudget once the server says fewer than the floor remain today, or with
// ctx's error.
func (b *Budget) Wait(ctx context.Context) error {
	b.mu.Lock()
	if b.dailyLeft >= 0 && b.dailyLeft <= b.dailyFloor {
		err := &DailyBudgetError{Budget: b.Name, Left: b.dailyLeft, Floor: b.dailyFloor, ResumesAt: b.lowSince.Add(DailyBudgetWindow)}
		b.mu.Unlock()
		return err
	}
	until := b.pausedUntil
	b.mu.Unlock()
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return b.limiter.Wait(ctx)
}

// Pause holds every worker of the budget for d (a Retry-After, or an exhausted window).
func (b *Budget) Pause(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := time.Now().Add(d); until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
}

// Observe adapts to HighLevel's X-RateLimit-* headers: the announced window becomes the limiter's
// rate, an exhausted window pauses the budget until it resets, and the daily count is tracked.
func (b *Budget) Observe(h http.Header) {
	maxReq, err1 := strconv.Atoi(h.Get("X-RateLimit-Max"))
	intervalMs, err2 := strconv.Atoi(h.Get("X-RateLimit-Interval-Milliseconds"))
	if err1 == nil && err2 == nil && maxReq > 0 && intervalMs > 0 {
		// The server counts fixed windows: a token bucket with burst B at rate r can put r+B
		// requests into one window, so keep r+B under the window's maximum.
		want := rate.Limit(float64(maxReq) / (float64(intervalMs) / 1000) * RateFactor)
		if b.limiter.Limit() != want {
			b.limiter.SetLimit(want)
			b.limiter.SetBurst(2)
		}
		if rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining")); err == nil && rem == 0 {
			b.Pause(time.Duration(intervalMs) * time.Millisecond / 4)
		}
	}
	if left, err := strconv.Atoi(h.Get("X-RateLimit-Daily-Remaining")); err == nil {
		b.mu.Lock()
		b.dailyLeft = left
		if left > b.dailyFloor {
			b.lowSince = time.Time{}
		} else if b.lowSince.IsZero() {
			b.lowSince = time.Now()
		}
		b.mu.Unlock()
	}
}
