//! The library's JSON envelope, `{"data": …, "error": {"code", "message"}}`,
//! and the protocol's rules for which status answers a request.
//!
//! The transport buffers a JSON answer ([`JsonResponse`]) without judging
//! it; these rules are the library's.

use http::{Method, StatusCode};
use library_transport::{error_message, Error, JsonResponse, Result};
use serde::de::DeserializeOwned;

/// Whether `status` is a success for a library request with `method`:
/// GET 200; POST 200 or 201; PUT 200 or 204; DELETE 200; any other method
/// any 2xx.
pub(crate) fn status_accepted(method: &Method, status: StatusCode) -> bool {
    match *method {
        Method::GET | Method::DELETE => status == StatusCode::OK,
        Method::POST => status == StatusCode::OK || status == StatusCode::CREATED,
        Method::PUT => status == StatusCode::OK || status == StatusCode::NO_CONTENT,
        _ => status.is_success(),
    }
}

#[derive(serde::Deserialize)]
struct Data<T> {
    data: Option<T>,
}

/// The library's reading of a buffered JSON answer.
pub(crate) trait Envelope {
    /// Applies the status rules for `method` (see [`status_accepted`]):
    /// 404 is not found, 401 unauthorized, any other unaccepted status an
    /// HTTP error, each carrying the server's message when its body has one.
    fn check(&self, method: &Method) -> Result<()>;
    /// Decodes `{"data": T}`; a missing or null `data` is a decode error.
    fn data<T: DeserializeOwned>(&self) -> Result<T>;
    /// Decodes `{"data": T}`; an empty body (or whitespace only) or a
    /// missing or null `data` gives `None`.
    fn data_opt<T: DeserializeOwned>(&self) -> Result<Option<T>>;
}

impl Envelope for JsonResponse {
    fn check(&self, method: &Method) -> Result<()> {
        if status_accepted(method, self.status) {
            return Ok(());
        }
        let (code, message) = error_message(&self.body);
        Err(Error::from_status(&self.url, self.status, code, message))
    }

    fn data<T: DeserializeOwned>(&self) -> Result<T> {
        self.data_opt()?.ok_or_else(|| Error::Decode {
            url: self.url.clone(),
            source: <serde_json::Error as serde::de::Error>::custom("response has no data"),
        })
    }

    fn data_opt<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        serde_json::from_slice::<Data<T>>(&self.body)
            .map(|e| e.data)
            .map_err(|source| Error::Decode {
                url: self.url.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Thing {
        name: String,
    }

    fn answer(status: u16, body: &str) -> JsonResponse {
        JsonResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.to_string().into(),
            url: "http://library.example/v1/x".into(),
        }
    }

    fn json<T: DeserializeOwned>(method: Method, a: &JsonResponse) -> Result<T> {
        a.check(&method)?;
        a.data()
    }

    fn json_opt<T: DeserializeOwned>(method: Method, a: &JsonResponse) -> Result<Option<T>> {
        a.check(&method)?;
        a.data_opt()
    }

    #[test]
    fn status_rules_follow_the_method() {
        let ok = answer(200, r#"{"data":{"name":"a"}}"#);
        let created = answer(201, r#"{"data":{"name":"b"}}"#);
        assert_eq!(json::<Thing>(Method::GET, &ok).unwrap().name, "a");
        assert_eq!(json::<Thing>(Method::POST, &created).unwrap().name, "b");
        // GET does not accept 201.
        let e = json::<Thing>(Method::GET, &created).unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::CREATED));
        assert!(answer(204, "").check(&Method::PUT).is_ok());
        assert!(answer(204, "").check(&Method::DELETE).is_err());
        assert!(answer(404, "")
            .check(&Method::PUT)
            .unwrap_err()
            .is_not_found());
        assert!(answer(401, "")
            .check(&Method::POST)
            .unwrap_err()
            .is_unauthorized());
    }

    #[test]
    fn empty_answers_are_none_only_where_allowed() {
        for a in [answer(200, ""), answer(204, "  \n")] {
            assert!(json_opt::<Thing>(Method::PUT, &a).unwrap().is_none());
        }
        assert!(
            json_opt::<Thing>(Method::PUT, &answer(200, r#"{"data":null}"#))
                .unwrap()
                .is_none()
        );
        let e = json::<Thing>(Method::GET, &answer(200, "")).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
    }

    #[test]
    fn error_shapes_become_typed_errors() {
        let e = json::<Thing>(
            Method::GET,
            &answer(404, r#"{"error":{"code":404,"message":"no such entity"}}"#),
        )
        .unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("no such entity"), "{e}");
        let e = json::<Thing>(
            Method::GET,
            &answer(
                401,
                r#"{"errors":[{"code":401,"detail":"Not Authorized","title":"x"}],"status":"error"}"#,
            ),
        )
        .unwrap_err();
        assert!(e.is_unauthorized());
        assert!(e.to_string().contains("Not Authorized"), "{e}");
        let e = json::<Thing>(
            Method::POST,
            &answer(
                412,
                r#"{"message":"already exists","errors":{"name":"taken"}}"#,
            ),
        )
        .unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::PRECONDITION_FAILED));
        assert!(e.to_string().contains("already exists"), "{e}");
        let e = json::<Thing>(Method::DELETE, &answer(500, "<html>oops</html>")).unwrap_err();
        assert!(e.is_retryable());
        match e {
            Error::Status { code, message, .. } => {
                assert_eq!(code, None);
                assert_eq!(message, None);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn decode_errors_name_the_endpoint() {
        let e = json::<Thing>(Method::GET, &answer(200, "{not json")).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }));
        assert!(e.to_string().contains("/v1/x"), "{e}");
    }
}
