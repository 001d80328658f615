//! A narrow link between a device and its relay: a TCP forwarder on 127.0.0.1 whose sockets
//! hold a few KiB each way. Loopback lets the kernel buffer tens of megabytes per connection,
//! which hides a peer that writes without reading; a mobile network holds far less. Over this
//! link such a peer fills the pipe and the connection stops, as it would in the field.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};

pub struct NarrowLink {
    pub addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl NarrowLink {
    /// Forward every connection made to the returned address to `target`, through sockets
    /// whose kernel buffers are `buffer` bytes (the kernel may double it).
    pub fn start(target: SocketAddr, buffer: u32) -> std::io::Result<NarrowLink> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(async {
            let socket = TcpSocket::new_v4()?;
            // Accepted connections inherit the listener's buffer sizes.
            socket.set_recv_buffer_size(buffer)?;
            socket.set_send_buffer_size(buffer)?;
            socket.bind("127.0.0.1:0".parse().expect("an address"))?;
            socket.listen(64)
        })?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut server) = connect(target, buffer).await else {
                        return;
                    };
                    let size = buffer as usize;
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut client,
                        &mut server,
                        size,
                        size,
                    )
                    .await;
                });
            }
        });
        Ok(NarrowLink {
            addr,
            _runtime: runtime,
        })
    }

    /// The link's address as a relay URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn connect(target: SocketAddr, buffer: u32) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(buffer)?;
    socket.set_send_buffer_size(buffer)?;
    socket.connect(target).await
}
