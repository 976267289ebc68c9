//! Where blobs live, as an operator writes it: nothing (the data directory), or
//! `s3://bucket/prefix` or `azure://container/prefix`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// `blobs/` in the data directory.
    Local,
    /// A bucket of an S3-compatible service, credentials and endpoint from `AWS_*`.
    S3 { bucket: String, prefix: String },
    /// A container of Azure Blob Storage, credentials and endpoint from `AZURE_*`.
    Azure { container: String, prefix: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocationError {
    #[error("blob location {0:?} is not s3://BUCKET[/PREFIX] or azure://CONTAINER[/PREFIX]")]
    Scheme(String),
    #[error("blob location {0:?} names no bucket or container")]
    NoBucket(String),
    #[error("blob location {0:?}: the prefix may not contain empty, \".\" or \"..\" segments")]
    Prefix(String),
}

impl BlobLocation {
    pub fn parse(text: &str) -> Result<Self, LocationError> {
        let (scheme, rest) = text.split_once("://").ok_or_else(|| LocationError::Scheme(text.into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(LocationError::NoBucket(text.into()));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(LocationError::Prefix(text.into()));
        }
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        match scheme {
            "s3" => Ok(Self::S3 { bucket, prefix }),
            "azure" | "az" => Ok(Self::Azure { container: bucket, prefix }),
            _ => Err(LocationError::Scheme(text.into())),
        }
    }

    /// `None` and the empty string mean the data directory.
    pub fn from_option(text: Option<&str>) -> Result<Self, LocationError> {
        match text.map(str::trim) {
            None | Some("") => Ok(Self::Local),
            Some(t) => Self::parse(t),
        }
    }
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, bucket, prefix) = match self {
            Self::Local => return f.write_str("the data directory"),
            Self::S3 { bucket, prefix } => ("s3", bucket, prefix),
            Self::Azure { container, prefix } => ("azure", container, prefix),
        };
        write!(f, "{scheme}://{bucket}")?;
        if !prefix.is_empty() {
            write!(f, "/{prefix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_containers_and_prefixes() {
        let s3 = BlobLocation::parse("s3://pkgs/asof/blobs/").unwrap();
        assert_eq!(s3, BlobLocation::S3 { bucket: "pkgs".into(), prefix: "asof/blobs".into() });
        assert_eq!(s3.to_string(), "s3://pkgs/asof/blobs");
        let az = BlobLocation::parse("azure://c").unwrap();
        assert_eq!(az, BlobLocation::Azure { container: "c".into(), prefix: "".into() });
        assert_eq!(BlobLocation::from_option(Some(" ")).unwrap(), BlobLocation::Local);
    }

    #[test]
    fn what_is_refused_and_why() {
        let cases = [
            ("/srv/blobs", "blob location \"/srv/blobs\" is not s3://BUCKET[/PREFIX] or azure://CONTAINER[/PREFIX]"),
            ("gs://b", "blob location \"gs://b\" is not s3://BUCKET[/PREFIX] or azure://CONTAINER[/PREFIX]"),
            ("s3:///x", "blob location \"s3:///x\" names no bucket or container"),
            (
                "s3://b/a//c",
                "blob location \"s3://b/a//c\": the prefix may not contain empty, \".\" or \"..\" segments",
            ),
            (
                "s3://b/../c",
                "blob location \"s3://b/../c\": the prefix may not contain empty, \".\" or \"..\" segments",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(BlobLocation::parse(text).unwrap_err().to_string(), message, "{text}");
        }
    }
}
