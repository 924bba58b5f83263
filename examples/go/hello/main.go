// hello: answers every event with a greeting (see conformance/README.md).
//
// A WASI command (GOOS=wasip1): the hook payload on stdin, the response on stdout, log lines
// on stderr, exit status 1 with the reason on stderr when the call fails.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type payload struct {
	Event    string `json:"event"`
	Action   string `json:"action"`
	Settings struct {
		Greeting *string `json:"greeting"`
	} `json:"settings"`
}

type message struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

type response struct {
	Messages   []message `json:"messages"`
	Operations []any     `json:"operations"`
}

func main() {
	var call payload
	if err := json.NewDecoder(os.Stdin).Decode(&call); err != nil {
		fmt.Fprintf(os.Stderr, "error: the payload on stdin is not JSON: %v\n", err)
		os.Exit(1)
	}
	greeting := "Hello"
	if call.Settings.Greeting != nil {
		greeting = *call.Settings.Greeting
	}
	fmt.Fprintln(os.Stderr, greeting)
	answer := response{
		Messages:   []message{{Type: "info", Content: fmt.Sprintf("%s, %s.%s!", greeting, call.Event, call.Action)}},
		Operations: []any{},
	}
	if err := json.NewEncoder(os.Stdout).Encode(answer); err != nil {
		fmt.Fprintf(os.Stderr, "error: cannot write the response: %v\n", err)
		os.Exit(1)
	}
}
