package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// restClient calls VitalProof's REST API with protojson bodies.
type restClient struct {
	base   string
	apiKey string
	hc     *http.Client
}

func newClient(base, apiKeyFile string) (*restClient, error) {
	c := &restClient{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 2 * time.Minute}}
	if apiKeyFile != "" {
		b, err := os.ReadFile(apiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("couldn't read API key: %w", err)
		}
		c.apiKey = strings.TrimSpace(string(b))
	}
	return c, nil
}

// apiError is an error answered by the server.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Status, e.Message) }

func (c *restClient) do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("couldn't read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, &apiError{Status: resp.StatusCode, Message: e.Message}
	}
	return b, nil
}

// call sends req (nil for none) as JSON and decodes the answer into resp.
func (c *restClient) call(ctx context.Context, method, path string, req, resp proto.Message) error {
	var body []byte
	if req != nil {
		var err error
		if body, err = (protojson.MarshalOptions{UseProtoNames: true}).Marshal(req); err != nil {
			return err
		}
	}
	b, err := c.do(ctx, method, path, "application/json", body)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, resp); err != nil {
		return fmt.Errorf("couldn't decode answer: %w", err)
	}
	return nil
}
