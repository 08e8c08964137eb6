use std::io::Write;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    pod: Pod,
}

const CURRENT: &str = "\
2024-01-01T00:00:01.000000000Z stdout F one
2024-01-01T00:00:02.500000000Z stderr F two
2024-01-01T00:00:03.000000000Z stdout P thr
2024-01-01T00:00:03.000000000Z stdout F ee
2024-01-01T00:00:04.000000000Z stdout F four
";

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let logs = dir.path().join("pods/default_p_u1/main");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("0.log"), "2024-01-01T00:00:00Z stdout F old\n").unwrap();
        std::fs::write(logs.join("1.log"), CURRENT).unwrap();
        Fixture { dir, pod }
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("pods/default_p_u1/main/1.log")
    }

    /// A container record and status for the current log, as the runtime writes them.
    fn container(&self, status: &str) {
        let c = self.dir.path().join("containers/c1");
        std::fs::create_dir_all(&c).unwrap();
        let record = serde_json::json!({ "log_path": self.log_file() });
        std::fs::write(c.join(state::RECORD), record.to_string()).unwrap();
        std::fs::write(c.join(state::STATUS), status).unwrap();
    }

    async fn read(&self, opts: LogRequest) -> Result<String, LogError> {
        let server = LogServer::new(self.dir.path());
        let mut stream = server.logs(&self.pod, &opts).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        Ok(String::from_utf8(out).unwrap())
    }
}

#[tokio::test]
async fn plain_log_is_the_text_of_each_record() {
    let f = Fixture::new();
    let text = f.read(LogRequest::default()).await.unwrap();
    assert_eq!(text, "one\ntwo\nthree\nfour\n");
}

#[tokio::test]
async fn previous_is_the_earlier_run_and_missing_one_is_a_bad_request() {
    let f = Fixture::new();
    let opts = LogRequest {
        previous: true,
        ..Default::default()
    };
    assert_eq!(f.read(opts.clone()).await.unwrap(), "old\n");
    std::fs::remove_file(f.dir.path().join("pods/default_p_u1/main/0.log")).unwrap();
    let err = f.read(opts).await.unwrap_err();
    assert!(matches!(&err, LogError::BadRequest(_)));
    assert_eq!(
        err.to_string(),
        "previous terminated container \"main\" in pod \"p\" not found"
    );
}

#[tokio::test]
async fn tail_since_timestamps_and_limit() {
    let f = Fixture::new();
    let tail = LogRequest {
        tail_lines: Some(2),
        ..Default::default()
    };
    assert_eq!(f.read(tail).await.unwrap(), "ee\nfour\n");

    let since = LogRequest {
        since_time: Some("2024-01-01T00:00:02.600Z".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(f.read(since).await.unwrap(), "three\nfour\n");

    let stamps = LogRequest {
        timestamps: true,
        tail_lines: Some(4),
        ..Default::default()
    };
    assert_eq!(
        f.read(stamps).await.unwrap(),
        "2024-01-01T00:00:02.5Z two\n2024-01-01T00:00:03Z thr\
         2024-01-01T00:00:03Z ee\n2024-01-01T00:00:04Z four\n"
    );

    let limit = LogRequest {
        limit_bytes: Some(6),
        ..Default::default()
    };
    assert_eq!(f.read(limit).await.unwrap(), "one\ntw");
}

#[tokio::test]
async fn container_names_are_checked() {
    let f = Fixture::new();
    let opts = LogRequest {
        container: Some("nope".into()),
        ..Default::default()
    };
    let err = f.read(opts).await.unwrap_err();
    assert_eq!(err.to_string(), "container nope is not valid for pod p");
}

#[tokio::test]
async fn follow_sends_new_lines_until_the_container_exits() {
    let f = Fixture::new();
    f.container(r#"{"state":"running","pid":1,"started_at":"2024-01-01T00:00:00Z"}"#);
    let server = LogServer::new(f.dir.path());
    let opts = LogRequest {
        follow: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    let mut stream = server.logs(&f.pod, &opts).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"four\n");

    let mut file = std::fs::File::options()
        .append(true)
        .open(f.log_file())
        .unwrap();
    file.write_all(b"2024-01-01T00:00:05Z stdout F five\n")
        .unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"five\n");

    file.write_all(b"2024-01-01T00:00:06Z stdout F six\n")
        .unwrap();
    f.container(r#"{"state":"exited","code":0,"reason":"Completed","finished_at":"x"}"#);
    let mut rest = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = stream.next().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
    });
    done.await
        .expect("the stream ends once the container exited");
    assert_eq!(rest, b"six\n");
}
