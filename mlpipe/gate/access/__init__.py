"""Access proof: decide AWS API calls against the generated IAM, trust, bucket and key policies."""
