// Command ttrpc-interop-peer is the Go side of ttrpc-ts's interop test (test/interop-go.test.ts),
// built with containerd's own ttrpc module.
//
//	ttrpc-interop-peer serve SOCKET   serve ttrpc.interop.v1.Echo on SOCKET; prints "ready"; runs until stdin closes
//	ttrpc-interop-peer call SOCKET    call the same service on SOCKET (ttrpc-ts's server) and print what it saw as JSON
//
// Service ttrpc.interop.v1.Echo, payloads are protobuf well-known wrapper types (no codegen):
//
//	Echo(BytesValue) BytesValue          the payload back
//	Metadata(StringValue) StringValue    the request metadata values of that key, joined by ","
//	Deadline(Empty) Int64Value           milliseconds left before the request's deadline, -1 without one
//	Fail(Int32Value) Empty               a status with that code and message "interop failure <code>"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const service = "ttrpc.interop.v1.Echo"

func methods() map[string]ttrpc.Method {
	return map[string]ttrpc.Method{
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req wrapperspb.BytesValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return &req, nil
		},
		"Metadata": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req wrapperspb.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			md, _ := ttrpc.GetMetadata(ctx)
			values, _ := md.Get(req.Value)
			return wrapperspb.String(strings.Join(values, ",")), nil
		},
		"Deadline": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req emptypb.Empty
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			d, ok := ctx.Deadline()
			if !ok {
				return wrapperspb.Int64(-1), nil
			}
			return wrapperspb.Int64(time.Until(d).Milliseconds()), nil
		},
		"Fail": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req wrapperspb.Int32Value
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return nil, status.Errorf(codes.Code(req.Value), "interop failure %d", req.Value)
		},
	}
}

func serve(path string) error {
	s, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	s.Register(service, methods())
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = s.Close()
	}()
	fmt.Println("ready")
	if err := s.Serve(context.Background(), l); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		return err
	}
	return nil
}

// statusOf reports a call's error as {code, message}.
func statusOf(err error) map[string]interface{} {
	if err == nil {
		return map[string]interface{}{"code": 0, "message": ""}
	}
	st, _ := status.FromError(err)
	return map[string]interface{}{"code": int(st.Code()), "message": st.Message()}
}

func call(path string) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]interface{}{}

	var echo wrapperspb.BytesValue
	err = c.Call(ctx, service, "Echo", wrapperspb.Bytes([]byte("hello from go")), &echo)
	out["echo"], out["echoStatus"] = string(echo.Value), statusOf(err)

	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	var bigResp wrapperspb.BytesValue
	err = c.Call(ctx, service, "Echo", wrapperspb.Bytes(big), &bigResp)
	out["largeSame"], out["largeStatus"] = string(bigResp.Value) == string(big), statusOf(err)

	var md wrapperspb.StringValue
	mctx := ttrpc.WithMetadata(ctx, ttrpc.MD{"x-interop": []string{"a", "b"}})
	err = c.Call(mctx, service, "Metadata", wrapperspb.String("x-interop"), &md)
	out["metadata"], out["metadataStatus"] = md.Value, statusOf(err)

	var left wrapperspb.Int64Value
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	err = c.Call(dctx, service, "Deadline", &emptypb.Empty{}, &left)
	dcancel()
	out["deadlineLeftMs"], out["deadlineStatus"] = left.Value, statusOf(err)

	out["fail"] = statusOf(c.Call(ctx, service, "Fail", wrapperspb.Int32(int32(codes.NotFound)), &emptypb.Empty{}))
	out["unknownMethod"] = statusOf(c.Call(ctx, service, "Frobnicate", &emptypb.Empty{}, &emptypb.Empty{}))
	out["unknownService"] = statusOf(c.Call(ctx, "ttrpc.interop.v1.Nope", "Echo", &emptypb.Empty{}, &emptypb.Empty{}))

	// 64 calls at once on one connection, each must get its own answer back.
	var wg sync.WaitGroup
	var mu sync.Mutex
	matched := 0
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			want := fmt.Sprintf("call-%d", i)
			var r wrapperspb.BytesValue
			if err := c.Call(ctx, service, "Echo", wrapperspb.Bytes([]byte(want)), &r); err == nil && string(r.Value) == want {
				mu.Lock()
				matched++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	out["parallelMatched"] = matched
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ttrpc-interop-peer serve|call SOCKET")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "call":
		err = call(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-interop-peer:", err)
		os.Exit(1)
	}
}
