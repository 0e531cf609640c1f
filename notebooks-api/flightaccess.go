package notebooksapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/velo-fse/velo/ledger"
)

// Arrow Flight SQL calls take the same JWTs as the HTTP API and are recorded in the same
// access log: method FLIGHT, the route the gRPC method (/arrow.flight.protocol.FlightService/DoGet),
// the project from x-velo-project, the status the HTTP equivalent of the call's gRPC code.

type flightAccessKey struct{}

// flightAccess is what a call's access record collects.
type flightAccess struct {
	user    *User
	subject string
	via     string
}

func noteFlightIdentity(ctx context.Context, u *User, subject, via string) {
	if a, ok := ctx.Value(flightAccessKey{}).(*flightAccess); ok {
		a.user, a.subject, a.via = u, subject, via
	}
}

// authenticateJWT is authenticate for a JWT (oidc.go).
func (f *flightSQL) authenticateJWT(ctx context.Context, token, key string) (context.Context, error) {
	id, err := f.s.oidc.verifyToken(ctx, token, f.s.oidc.cfg.Audience, func(p string) bool {
		_, err := f.s.led.Project(p)
		return err == nil
	})
	if err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
			f.s.authFail.failedKey(key)
		}
		return nil, flightError(err)
	}
	u := id.User
	noteFlightIdentity(ctx, &u, id.Subject, "jwt")
	return context.WithValue(ctx, flightUserKey{}, &u), nil
}

var flightProblemCode = regexp.MustCompile(`^\[([a-z_]+)\] `)

// startAccess begins a call's access record; done(err) finishes and queues it.
func (f *flightSQL) startAccess(ctx context.Context, method string) (context.Context, func(error)) {
	if f.s.access == nil {
		return ctx, func(error) {}
	}
	start := time.Now()
	a := &flightAccess{}
	ctx = context.WithValue(ctx, flightAccessKey{}, a)
	return ctx, func(err error) {
		client := ""
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			if client, _, _ = net.SplitHostPort(p.Addr.String()); client == "" {
				client = p.Addr.String()
			}
		}
		st := status.Convert(err)
		rec := ledger.AccessRecord{Time: f.s.now().UTC(), RequestID: randomID(), Via: a.via, Subject: a.subject, Client: client,
			Method: "FLIGHT", Route: method, Project: header(ctx, "x-velo-project"), Status: grpcHTTPStatus(st.Code()),
			Millis: float64(time.Since(start).Microseconds()) / 1000}
		if a.user != nil {
			rec.User, rec.Role = a.user.Name, string(a.user.Role)
		}
		if m := flightProblemCode.FindStringSubmatch(st.Message()); m != nil && err != nil {
			rec.Code = m[1]
		}
		if !projectIDPattern.MatchString(rec.Project) {
			rec.Project = ""
		}
		f.s.access.Record(rec)
	}
}

// grpcHTTPStatus is the HTTP status a gRPC code stands for (flightError's mapping, back).
func grpcHTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.NotFound:
		return http.StatusNotFound
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Canceled:
		return 499 // the client went away
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}
