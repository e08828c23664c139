# Shared by bench/website/run.sh and first-request.sh (sourced, not run): free loopback ports,
# waiting for a server, and nginx (1 worker) serving static-website's files with its
# certificate. The caller sets `ex` (examples/static-website) and `work` (a temporary
# directory its EXIT trap removes, killing `$work/nginx.pid`).

# A free TCP port on 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (at most 10 s) until something accepts on 127.0.0.1:$1.
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

# Starts nginx on 127.0.0.1:$1 over TLS, in the background, and waits for it.
start_nginx() {
  mkdir -p "$work/nginx"
  cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$1 ssl;
    ssl_certificate $ex/pki/server.pem;
    ssl_certificate_key $ex/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    root $ex/htdocs;
  }
}
NGINX
  nginx -c "$work/nginx.conf" -p "$work/nginx" & wait_port "$1"
}

# nginx's version, as `nginx -v` gives it.
nginx_version() { nginx -v 2>&1 | sed 's/.*nginx\///'; }
