package paths

import (
	"fmt"
	"regexp"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The framework checks every field's type before a handler runs and answers
// a value it cannot convert with its own words ("error converting input for
// field ..."). ExplainConversionError rewrites that answer in the engine's:
// the field, what was given and what is expected.

var conversionRe = regexp.MustCompile(`error converting input for field "([^"]+)"`)

// ExplainConversionError returns resp with a framework conversion error
// restated for route's field, or resp unchanged.
func ExplainConversionError(route *framework.Path, req *logical.Request, resp *logical.Response) *logical.Response {
	if resp == nil || !resp.IsError() || route == nil {
		return resp
	}
	msg, _ := resp.Data["error"].(string)
	m := conversionRe.FindStringSubmatch(msg)
	if m == nil {
		return resp
	}
	field := m[1]
	schema := route.Fields[field]
	if schema == nil {
		return resp
	}
	given := fmt.Sprint(req.Data[field])
	return logical.ErrorResponse(inputErr(field, "%q is not %s", truncateForMsg(given), expected(schema.Type)).Error())
}

// expected says in words what a field of type t takes.
func expected(t framework.FieldType) string {
	switch t {
	case framework.TypeInt, framework.TypeInt64:
		return "a whole number"
	case framework.TypeBool:
		return "true or false"
	case framework.TypeDurationSecond, framework.TypeSignedDurationSecond:
		return "a duration such as 90s, 30m or 1h (or a number of seconds)"
	case framework.TypeCommaStringSlice, framework.TypeStringSlice:
		return "a comma-separated list or a list of strings"
	default:
		return "a " + t.String()
	}
}
