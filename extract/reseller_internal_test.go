package extract

import "testing"

func TestRekey_RenamesNestsAndNeverOverwrites(t *testing.T) {
	names := map[string]string{"id": "uuid", "companyId": "company.uuid", "createdOn": "creationDate"}
	for _, c := range []struct{ in, want string }{
		{`{"id":"a","name":"x","companyId":"c1"}`, `{"uuid":"a","name":"x","company":{"uuid":"c1"}}`},
		{`{"\u0069d":"a", "createdOn" : 12}`, `{"uuid":"a","creationDate":12}`},
		// The record already has the new names: nothing is renamed over them.
		{`{"id":"a","uuid":"b","companyId":"c","company":{"uuid":"d"}}`, `{"id":"a","uuid":"b","companyId":"c","company":{"uuid":"d"}}`},
		{`{}`, `{}`},
	} {
		got, err := rekey([]byte(c.in), names)
		if err != nil || string(got) != c.want {
			t.Errorf("rekey(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := rekey([]byte(`{"id":`), names); err == nil {
		t.Error("a truncated record must be an error")
	}
}
