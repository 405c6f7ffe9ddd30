//! The delay line, the total rate cap and the connection peak of
//! `ThrottledLink`, on raw TCP through 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use library_testserver::{LinkDirection, ThrottledLink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server that echoes every byte back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A server that sends `n` bytes to each connection, then closes it.
async fn source_server(n: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let data = vec![7u8; n];
                let _ = sock.write_all(&data).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

/// Reads a connection to its end; returns how many bytes came.
async fn drain(addr: SocketAddr) -> usize {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

#[tokio::test]
async fn delay_adds_to_each_round_trip() {
    let link = ThrottledLink::builder(echo_server().await)
        .round_trip_time(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    assert_eq!(link.up_settings().delay_time(), Duration::from_millis(25));
    assert_eq!(link.down_settings().delay_time(), Duration::from_millis(25));
    let mut sock = TcpStream::connect(link.addr()).await.unwrap();
    let mut byte = [0u8; 1];
    for round in 0..3u8 {
        let t = Instant::now();
        sock.write_all(&[round]).await.unwrap();
        sock.read_exact(&mut byte).await.unwrap();
        let took = t.elapsed();
        assert_eq!(byte, [round]);
        // 25 ms each way: the round trip takes at least 50 ms.
        assert!(
            took >= Duration::from_millis(50),
            "round trip took {took:?}"
        );
    }
}

#[tokio::test]
async fn delay_line_keeps_throughput() {
    const SIZE: usize = 8 << 20;
    let link = ThrottledLink::builder(source_server(SIZE).await)
        .down(LinkDirection::new().delay(Duration::from_millis(25)))
        .start()
        .await
        .unwrap();
    let t = Instant::now();
    assert_eq!(drain(link.addr()).await, SIZE);
    let took = t.elapsed();
    // A pause of 25 ms per slice of at most 64 KiB, one after the other,
    // would take 128 * 25 ms = 3.2 s; the delay line only adds the 25 ms
    // once.
    assert!(took >= Duration::from_millis(25), "took {took:?}");
    assert!(took < Duration::from_millis(1600), "took {took:?}");
    assert_eq!(link.bytes_down(), SIZE as u64);
}

#[tokio::test]
async fn a_window_bounds_each_connection_to_window_per_delay() {
    const SIZE: usize = 2 << 20;
    const WINDOW: u64 = 256 << 10;
    let link = ThrottledLink::builder(source_server(SIZE).await)
        .down(
            LinkDirection::new()
                .delay(Duration::from_millis(20))
                .window(WINDOW),
        )
        .start()
        .await
        .unwrap();
    assert_eq!(link.down_settings().window_size(), Some(WINDOW));
    let t = Instant::now();
    assert_eq!(drain(link.addr()).await, SIZE);
    let took = t.elapsed();
    // 256 KiB per 20 ms: 2 MiB take 8 windows, at least 160 ms (without
    // the window, the delay line takes about 20 ms for it all).
    assert!(took >= Duration::from_millis(150), "took {took:?}");
    assert_eq!(link.bytes_down(), SIZE as u64);
}

#[tokio::test]
async fn total_rate_is_shared_by_all_connections() {
    const EACH: usize = 1 << 20;
    const RATE: u64 = 4 << 20;
    let link = ThrottledLink::builder(source_server(EACH).await)
        .down(LinkDirection::new().total_rate(RATE))
        .start()
        .await
        .unwrap();
    assert_eq!(link.down_settings().total_rate_limit(), Some(RATE));
    assert_eq!(link.down_settings().rate_limit(), None);
    let t = Instant::now();
    let addr = link.addr();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let n = drain(addr).await;
                (n, t.elapsed())
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        let (n, took) = task.await.unwrap();
        assert_eq!(n, EACH);
        times.push(took);
    }
    let last = *times.iter().max().unwrap();
    let first = *times.iter().min().unwrap();
    // 4 MiB in all at 4 MiB/s take about a second, however many streams.
    assert!(last >= Duration::from_millis(900), "took {last:?}");
    // Taking turns, the streams end about together (one stream served
    // before the others would end after a quarter of the time).
    assert!(first * 10 >= last * 6, "first {first:?}, last {last:?}");
    assert_eq!(link.connections(), 4);
    assert_eq!(link.peak_connections(), 4);
}

#[tokio::test]
async fn total_and_per_connection_caps_combine() {
    const EACH: usize = 256 << 10;
    let link = ThrottledLink::builder(source_server(EACH).await)
        .down(
            LinkDirection::new()
                .rate(256 << 10)
                .total_rate(16 << 20)
                .delay(Duration::from_millis(10)),
        )
        .start()
        .await
        .unwrap();
    let t = Instant::now();
    let addr = link.addr();
    let (a, b) = tokio::join!(drain(addr), drain(addr));
    let took = t.elapsed();
    assert_eq!((a, b), (EACH, EACH));
    // The per-connection cap holds under a total cap that is far above it:
    // 256 KiB at 256 KiB/s take about a second.
    assert!(took >= Duration::from_millis(900), "took {took:?}");
}

#[tokio::test]
async fn peak_counts_connections_open_at_once() {
    let link = ThrottledLink::builder(echo_server().await)
        .start()
        .await
        .unwrap();
    let mut open = Vec::new();
    for i in 0..3u8 {
        let mut s = TcpStream::connect(link.addr()).await.unwrap();
        s.write_all(&[i]).await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        open.push(s);
    }
    assert_eq!(link.open_connections(), 3);
    drop(open);
    // Wait until the link has seen them close.
    let t = Instant::now();
    while link.open_connections() > 0 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(link.open_connections(), 0);
    // One more, alone: the peak stays at 3, the total grows.
    let mut s = TcpStream::connect(link.addr()).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(link.connections(), 4);
    assert_eq!(link.peak_connections(), 3);
}
