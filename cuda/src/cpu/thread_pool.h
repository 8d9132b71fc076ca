// A small fixed pool of std::threads running parallel loops; the calling thread takes part.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace vn::cpu {

class ThreadPool {
 public:
  // n_threads counts the caller; 0 = every core this process may use (its CPU affinity).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(i) for every i in [0, n), spread over the pool (dynamic scheduling).
  // An exception thrown by any call is rethrown here after the loop has drained.
  template <typename F>
  void parallel_for(int64_t n, F&& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    auto call = [](void* ctx, int64_t i) { (*static_cast<F*>(ctx))(i); };
    run(n, call, static_cast<void*>(&fn));
  }

 private:
  using TaskFn = void (*)(void*, int64_t);
  void run(int64_t n, TaskFn fn, void* ctx);
  void work_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int busy_ = 0;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
};

}  // namespace vn::cpu
