// Package chat is a DEMO chat service with an OpenAI-compatible surface,
// for `attestlog up` to put behind its demo enclave agent: no model, it
// answers every message with a fixed reply that quotes it, so that a
// client can see a request go through the attested channel and back. It
// streams (server-sent events, one event per word, flushed as written)
// when asked to, as model servers do.
package chat

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Model is the only model the demo serves.
const Model = "attestlog-demo-echo"

// Server is the demo chat service.
type Server struct {
	n atomic.Int64
	// WordDelay is the pause between streamed words (default none).
	WordDelay time.Duration
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Model    string    `json:"model"`
	Messages []message `json:"messages"`
	Stream   bool      `json:"stream"`
}

// Handler serves POST /v1/chat/completions and GET /v1/models.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model","owned_by":"attestlog-demo"}]}`, Model)
	})
	mux.HandleFunc("POST /v1/chat/completions", s.complete)
	return http.MaxBytesHandler(mux, 1<<20)
}

// Reply is the demo's answer to the last user message.
func Reply(last string) string {
	return "[attestlog demo model, not a real one] You said: " + last
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	var req request
	d := json.NewDecoder(r.Body)
	if err := d.Decode(&req); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, "request body: "+err.Error())
		return
	}
	last := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = m.Content
		}
	}
	id := fmt.Sprintf("chatcmpl-demo-%d", s.n.Add(1))
	created := time.Now().Unix()
	reply := Reply(last)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": Model,
			"choices": []any{map[string]any{"index": 0, "message": message{Role: "assistant", Content: reply}, "finish_reason": "stop"}},
			"usage":   map[string]int{"prompt_tokens": len(strings.Fields(last)), "completion_tokens": len(strings.Fields(reply)), "total_tokens": len(strings.Fields(last)) + len(strings.Fields(reply))},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	event := func(delta map[string]string, finish any) {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		io.WriteString(w, "data: "+string(b)+"\n\n")
		if fl != nil {
			fl.Flush()
		}
	}
	event(map[string]string{"role": "assistant"}, nil)
	for i, word := range strings.Fields(reply) {
		if i > 0 {
			word = " " + word
		}
		if s.WordDelay > 0 {
			time.Sleep(s.WordDelay)
		}
		event(map[string]string{"content": word}, nil)
	}
	event(map[string]string{}, "stop")
	io.WriteString(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}
