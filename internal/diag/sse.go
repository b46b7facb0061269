package diag

import "encoding/json"

// StepJSON returns a finished step as the one JSON object that --json
// prints for it ({"type":"step", …}), without the newline: the web
// admin's server-sent events carry the same bytes as the CLI's JSON Lines.
func StepJSON(st Step) []byte { return marshalEvent(stepLine(st)) }

// StartJSON returns the event of a step that has just started:
// {"type":"start","id":…,"title":…} with host and ip when set. JSON Lines
// output has no such line; server-sent events do (DESIGN.md, "JSON").
func StartJSON(st Step) []byte {
	return marshalEvent(struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Title string `json:"title"`
		Host  string `json:"host,omitempty"`
		IP    string `json:"ip,omitempty"`
	}{"start", st.ID, st.Title, st.Host, st.IP})
}

// marshalEvent encodes v as writeJSONLine does, an error object when v
// cannot be encoded (a step's Data that does not marshal).
func marshalEvent(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"type": "error", "error": err.Error()})
	}
	return b
}
