package lake

import "github.com/marketsync/marketsync/config"

// FromConfig returns the Options of a validated lake section.
func FromConfig(c *config.Lake) Options {
	props := map[string]string{}
	for k, v := range map[string]string{
		"credential":           c.Credential,
		"token":                c.Token,
		"s3.endpoint":          c.S3Endpoint,
		"s3.region":            c.S3Region,
		"s3.access-key-id":     c.S3AccessKeyID,
		"s3.secret-access-key": c.S3SecretAccessKey,
	} {
		if v != "" {
			props[k] = v
		}
	}
	return Options{Catalog: c.Catalog, URI: c.URI, Warehouse: c.Warehouse, Namespace: c.Namespace,
		Upsert: c.Upsert, MaxAttempts: c.MaxAttempts, Properties: props}
}
