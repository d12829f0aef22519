// Renders Ollama-style TEMPLATE text with Go's text/template, as Ollama does: reads a JSON list of
// {"template": ..., "system": ..., "messages": [{"role", "content"}]} on stdin and writes a JSON list
// of rendered strings (or "ERROR: ..." per case) on stdout. Used by test_modelfile.py.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Case struct {
	Template string    `json:"template"`
	System   string    `json:"system"`
	Messages []Message `json:"messages"`
}

func render(c Case) string {
	tmpl, err := template.New("").Option("missingkey=zero").Parse(c.Template)
	if err != nil {
		return "ERROR: " + err.Error()
	}
	var out strings.Builder
	data := map[string]any{"System": c.System, "Messages": c.Messages, "Response": ""}
	if err := tmpl.Execute(&out, data); err != nil {
		return "ERROR: " + err.Error()
	}
	return out.String()
}

func main() {
	var cases []Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	results := make([]string, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	json.NewEncoder(os.Stdout).Encode(results)
}
