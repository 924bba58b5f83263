// invoice-check: validates an invoice annotation (see conformance/README.md).
//
// Required fields must have a value, amount_total must be a number no greater than
// max_total, and the currency code is trimmed and upper-cased. A WASI command (GOOS=wasip1):
// the hook payload on stdin, the response on stdout, log lines on stderr, exit status 1 with
// the reason on stderr when the call fails.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"strings"
)

var number = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// node is one node of Rossum's annotation tree.
type node struct {
	Category string          `json:"category"`
	SchemaID string          `json:"schema_id"`
	ID       json.Number     `json:"id"`
	Children json.RawMessage `json:"children"`
	Content  *struct {
		Value *string `json:"value"`
	} `json:"content"`
}

func (n *node) value() *string {
	if n.Content == nil {
		return nil
	}
	return n.Content.Value
}

type settings struct {
	Required      []string     `json:"required"`
	MaxTotal      *json.Number `json:"max_total"`
	CurrencyField *string      `json:"currency_field"`
}

type payload struct {
	Settings   settings `json:"settings"`
	Annotation *struct {
		Content json.RawMessage `json:"content"`
	} `json:"annotation"`
}

type message struct {
	Type    string       `json:"type"`
	Content string       `json:"content"`
	ID      *json.Number `json:"id,omitempty"`
}

type operation struct {
	Op    string      `json:"op"`
	ID    json.Number `json:"id"`
	Value any         `json:"value"`
}

// collect walks the tree depth first, in order, appending its datapoints.
func collect(raw json.RawMessage, out []*node) ([]*node, error) {
	var nodes []*node
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return nil, errors.New("annotation.content (or a node's children) is not a list")
	}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if n.Children != nil {
			var err error
			if out, err = collect(n.Children, out); err != nil {
				return nil, err
			}
		} else if n.Category == "datapoint" {
			out = append(out, n)
		}
	}
	return out, nil
}

func find(datapoints []*node, schemaID string) *node {
	for _, d := range datapoints {
		if d.SchemaID == schemaID {
			return d
		}
	}
	return nil
}

// asciiUpper upper-cases ASCII letters only, as the specification asks.
func asciiUpper(text string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, text)
}

func check(call payload) (map[string]any, error) {
	if call.Annotation == nil || call.Annotation.Content == nil || string(call.Annotation.Content) == "null" {
		return nil, errors.New("the payload has no annotation.content")
	}
	datapoints, err := collect(call.Annotation.Content, nil)
	if err != nil {
		return nil, err
	}
	messages := []message{}
	operations := []operation{}

	for _, schemaID := range call.Settings.Required {
		found := find(datapoints, schemaID)
		if found == nil {
			messages = append(messages, message{Type: "error", Content: schemaID + " is required"})
		} else if v := found.value(); v == nil || strings.TrimSpace(*v) == "" {
			id := found.ID
			messages = append(messages, message{Type: "error", Content: schemaID + " is required", ID: &id})
		}
	}

	if max := call.Settings.MaxTotal; max != nil {
		if total := find(datapoints, "amount_total"); total != nil {
			text := ""
			if v := total.value(); v != nil {
				text = *v
			}
			normalized := strings.ReplaceAll(strings.ReplaceAll(text, " ", ""), ",", ".")
			id := total.ID
			if !number.MatchString(normalized) {
				messages = append(messages, message{Type: "error", Content: "amount_total is not a number", ID: &id})
			} else {
				amount, _ := new(big.Rat).SetString(normalized)
				limit, ok := new(big.Rat).SetString(max.String())
				if !ok {
					return nil, fmt.Errorf("settings.max_total is not a number: %s", max)
				}
				if amount.Cmp(limit) > 0 {
					messages = append(messages, message{Type: "warning", Content: "amount_total exceeds " + max.String(), ID: &id})
				}
			}
		}
	}

	if field := call.Settings.CurrencyField; field != nil {
		for _, d := range datapoints {
			v := d.value()
			if d.SchemaID != *field || v == nil {
				continue
			}
			normalized := asciiUpper(strings.TrimSpace(*v))
			if normalized != *v {
				value := map[string]any{"content": map[string]any{"value": normalized}}
				operations = append(operations, operation{Op: "replace", ID: d.ID, Value: value})
			}
		}
	}

	fmt.Fprintf(os.Stderr, "checked %d datapoints\n", len(datapoints))
	return map[string]any{"messages": messages, "operations": operations}, nil
}

func main() {
	decoder := json.NewDecoder(os.Stdin)
	decoder.UseNumber()
	var call payload
	if err := decoder.Decode(&call); err != nil {
		fmt.Fprintf(os.Stderr, "error: the payload on stdin is not JSON: %v\n", err)
		os.Exit(1)
	}
	answer, err := check(call)
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(answer); err != nil {
		fmt.Fprintf(os.Stderr, "error: cannot write the response: %v\n", err)
		os.Exit(1)
	}
}
