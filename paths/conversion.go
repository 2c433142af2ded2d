package paths

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

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

// CheckInputTypes refuses a value whose type its field cannot take, before
// the framework converts it: the framework's conversion is weak (JSON true
// becomes 1 for a whole number, 1.5 becomes 1, 123 becomes "123" for a
// string), and a value it does refuse would be answered in its own words by
// Vault's existence check, which runs before any handler. A value of a
// fitting type but a bad form (live_token_cap=abc) is refused here too, with
// the same words. The callback path takes arbitrary input (Zoho's redirect)
// and answers with a page of its own: it is not checked.
func CheckInputTypes(route *framework.Path, req *logical.Request) *InputError {
	if route == nil || req == nil || req.Operation == logical.HelpOperation || route.TakesArbitraryInput {
		return nil
	}
	fields := make([]string, 0, len(req.Data))
	for k := range req.Data {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, field := range fields {
		schema := route.Fields[field]
		if schema == nil || strings.Contains(route.Pattern, "(?P<"+field+">") {
			continue // unknown fields are the handler's; captures override the body
		}
		v := req.Data[field]
		if fits(schema.Type, v) {
			continue
		}
		return inputErr(field, "%s is not %s", describe(v), expected(schema.Type))
	}
	return nil
}

var wholeRe = regexp.MustCompile(`^[+-]?[0-9]+$`)

// fits reports whether v is a value of a type (and, for whole numbers, a
// form) a field of type t takes.
func fits(t framework.FieldType, v interface{}) bool {
	switch t {
	case framework.TypeString, framework.TypeLowerCaseString, framework.TypeNameString:
		_, ok := v.(string)
		return ok
	case framework.TypeInt, framework.TypeInt64:
		return isWhole(v, true)
	case framework.TypeBool:
		switch x := v.(type) {
		case bool:
			return true
		case string:
			_, err := strconv.ParseBool(x)
			return err == nil
		}
		return false
	case framework.TypeDurationSecond, framework.TypeSignedDurationSecond:
		if _, ok := v.(string); ok {
			return true // the framework parses it; ExplainConversionError words its refusal
		}
		return isWhole(v, false)
	case framework.TypeCommaStringSlice, framework.TypeStringSlice:
		switch x := v.(type) {
		case string, []string:
			return true
		case []interface{}:
			for _, e := range x {
				if _, ok := e.(string); !ok {
					return false
				}
			}
			return true
		}
		return false
	}
	return true
}

// isWhole reports whether v is a whole number: a JSON or Go number without a
// fraction or, if strings are allowed, its decimal digits.
func isWhole(v interface{}, strOK bool) bool {
	switch x := v.(type) {
	case string:
		return strOK && wholeRe.MatchString(x)
	case json.Number:
		_, err := x.Int64()
		return err == nil
	case float64:
		return x == math.Trunc(x) && math.Abs(x) < 1<<53
	case float32:
		return float64(x) == math.Trunc(float64(x))
	case bool, nil:
		return false
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// describe words a refused value: a string quoted, anything else by its JSON
// type and value.
func describe(v interface{}) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", truncateForMsg(x))
	case bool:
		return fmt.Sprintf("JSON %t", x)
	case nil:
		return "JSON null"
	case json.Number, float64, float32:
		return "the number " + truncateForMsg(fmt.Sprint(x))
	case map[string]interface{}:
		return "a JSON object"
	case []interface{}, []string:
		return "a list"
	}
	if isWhole(v, false) {
		return "the number " + fmt.Sprint(v)
	}
	return "a value of type " + reflect.TypeOf(v).String()
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
	case framework.TypeString, framework.TypeLowerCaseString, framework.TypeNameString:
		return "a string"
	default:
		return "a " + t.String()
	}
}
